"""outbound: what came of one dial attempt, from the Q.850 cause Asterisk reports.

Why: ``ChannelDestroyed`` / ``ChannelHangupRequest`` carry a ``cause`` integer (ITU-T Q.850, as
Asterisk's ``causes.h`` numbers them, SIP responses mapped onto them by chan_pjsip). The campaign
needs far fewer distinctions: should this contact be tried again later (busy, no answer, a
congested network), never again (invalid number, rejected), or was the call answered. Every
cause Asterisk defines is in the table; one it does not know is ``failed`` (never retried: an
unknown failure must not make us call someone again and again).
"""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    ANSWERED_HUMAN = "answered_human"
    ANSWERED_MACHINE = "answered_machine"  # answering machine / voicemail (AMD decides, not the cause)
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    REJECTED = "rejected"  # declined by the callee or barred by the network: not retried
    CONGESTION = "congestion"  # the network could not carry the call now: retried
    FAILED = "failed"  # out of order, protocol trouble, an error of ours: not retried
    INVALID_NUMBER = "invalid_number"  # unallocated, changed, malformed: never retried


ANSWERED = frozenset({Outcome.ANSWERED_HUMAN, Outcome.ANSWERED_MACHINE})
RETRYABLE = frozenset({Outcome.BUSY, Outcome.NO_ANSWER, Outcome.CONGESTION})
# A run of these in a row means the trunk (not the contacts) is the problem: the dialer pauses.
TRUNK_FAILURES = frozenset({Outcome.REJECTED, Outcome.FAILED, Outcome.CONGESTION})

_I, _N, _B, _R, _C, _F = (Outcome.INVALID_NUMBER, Outcome.NO_ANSWER, Outcome.BUSY, Outcome.REJECTED,
                          Outcome.CONGESTION, Outcome.FAILED)  # fmt: skip

# Q.850 cause -> outcome of a call that was never answered.
CAUSES: dict[int, Outcome] = {
    0: _F,  # not defined: Asterisk had no cause to give
    1: _I,  # unallocated (unassigned) number; SIP 404
    2: _I,  # no route to specified transit network
    3: _I,  # no route to destination
    5: _I,  # misdialled trunk prefix
    6: _F,  # channel unacceptable
    7: _F,  # call awarded and being delivered in an established channel
    8: _C,  # pre-empted
    14: _I,  # number ported, not here
    16: _N,  # normal clearing before answer: the far end (or our ring timeout) gave up ringing
    17: _B,  # user busy; SIP 486, 600
    18: _N,  # no user responding; SIP 408, 480
    19: _N,  # no answer from user (user alerted): ring timeout
    20: _N,  # subscriber absent (phone off, out of coverage)
    21: _R,  # call rejected; SIP 403, 603
    22: _I,  # number changed; SIP 410
    23: _I,  # redirected to new destination
    26: _N,  # non-selected user clearing (answered elsewhere)
    27: _F,  # destination out of order; SIP 502
    28: _I,  # invalid number format (incomplete number); SIP 484
    29: _F,  # facility rejected; SIP 501
    30: _F,  # response to STATUS ENQUIRY
    31: _F,  # normal, unspecified
    34: _C,  # no circuit/channel available; SIP 503 (some trunks)
    38: _C,  # network out of order
    41: _C,  # temporary failure
    42: _C,  # switching equipment congestion
    43: _F,  # access information discarded
    44: _C,  # requested channel not available
    47: _C,  # resource unavailable, unspecified
    50: _F,  # requested facility not subscribed
    52: _R,  # outgoing call barred
    54: _R,  # incoming call barred (at the callee)
    57: _F,  # bearer capability not authorised
    58: _F,  # bearer capability not presently available
    65: _F,  # bearer capability not implemented
    66: _F,  # channel type not implemented
    69: _F,  # requested facility not implemented
    81: _F,  # invalid call reference value
    88: _F,  # incompatible destination; SIP 488, 606
    95: _F,  # invalid message, unspecified
    96: _F,  # mandatory information element missing
    97: _F,  # message type non-existent
    98: _F,  # message not compatible with call state
    99: _F,  # information element non-existent
    100: _F,  # invalid information element contents
    101: _F,  # message not compatible with call state
    102: _C,  # recovery on timer expiry: a signalling timeout, worth another try later
    103: _F,  # mandatory information element length error
    111: _F,  # protocol error, unspecified
    127: _F,  # interworking, unspecified
}


def outcome_for_cause(cause: int, answered: bool) -> Outcome:
    """The outcome of a call that ended with ``cause``.

    An answered call is ``answered_human`` whatever the cause (its hang-up cause only says how it
    ended); telling a machine from a person is answering-machine detection's job.
    """
    if answered:
        return Outcome.ANSWERED_HUMAN
    return CAUSES.get(cause, Outcome.FAILED)
