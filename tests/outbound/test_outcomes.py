"""Outcomes: every Q.850 cause Asterisk reports maps to what the campaign does next."""

from __future__ import annotations

import pytest

from ari_app.outbound.outcomes import CAUSES, RETRYABLE, TRUNK_FAILURES, Outcome, outcome_for_cause

Oc = Outcome


@pytest.mark.parametrize(
    ("cause", "expected"),
    [
        (16, Oc.NO_ANSWER),  # normal clearing before answer
        (17, Oc.BUSY),
        (18, Oc.NO_ANSWER),
        (19, Oc.NO_ANSWER),
        (20, Oc.NO_ANSWER),
        (21, Oc.REJECTED),
        (1, Oc.INVALID_NUMBER),
        (3, Oc.INVALID_NUMBER),
        (22, Oc.INVALID_NUMBER),
        (28, Oc.INVALID_NUMBER),
        (34, Oc.CONGESTION),
        (38, Oc.CONGESTION),
        (41, Oc.CONGESTION),
        (42, Oc.CONGESTION),
        (44, Oc.CONGESTION),
        (27, Oc.FAILED),
        (0, Oc.FAILED),
        (31, Oc.FAILED),
        (127, Oc.FAILED),
        (52, Oc.REJECTED),
        (102, Oc.CONGESTION),
    ],
)
def test_unanswered_cause(cause: int, expected: Outcome) -> None:
    assert outcome_for_cause(cause, answered=False) is expected


def test_answered_call_is_a_person_whatever_its_hangup_cause() -> None:
    for cause in (16, 17, 21, 31, 127):
        assert outcome_for_cause(cause, answered=True) is Oc.ANSWERED_HUMAN


def test_unknown_cause_fails_and_is_never_retried() -> None:
    assert 250 not in CAUSES
    assert outcome_for_cause(250, answered=False) is Oc.FAILED
    assert Oc.FAILED not in RETRYABLE


def test_retryable_and_trunk_sets() -> None:
    assert RETRYABLE == {Oc.BUSY, Oc.NO_ANSWER, Oc.CONGESTION}
    assert Oc.INVALID_NUMBER not in RETRYABLE | TRUNK_FAILURES  # a bad list entry is not the trunk
    assert Oc.REJECTED in TRUNK_FAILURES and Oc.BUSY not in TRUNK_FAILURES
    assert set(CAUSES.values()) <= set(Outcome)
