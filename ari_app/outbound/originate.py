"""outbound: placing one campaign call on Asterisk and running it like an inbound call.

Why here and not in ``calls``: an inbound call starts with a StasisStart we did not expect; ours
starts with an originate whose every step we wait for. The channel is originated into our app
(so its events are ours from the first ring), its final cause before an answer becomes the
attempt's outcome, and once it is answered it becomes an ordinary ``Call`` run by the same
manager, with an ``OutboundContext`` telling the conversation what to say. With
``amd: asterisk`` the answered channel first goes through Asterisk's ``AMD()`` in the
``[ari-app-amd]`` dialplan context, which sends it back to us with its verdict.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import structlog

from ari_app.ari import AriError
from ari_app.ari.models import Event
from ari_app.calls.call import Call
from ari_app.outbound.campaign import CampaignSpec
from ari_app.outbound.contacts import Contact
from ari_app.outbound.context import OutboundContext
from ari_app.outbound.dialer import AttemptResult
from ari_app.outbound.outcomes import Outcome, outcome_for_cause

log = structlog.get_logger(__name__)

CHANNEL_PREFIX = "out-"  # never OWN_PREFIX ("iva-"): this is a caller leg, adopted after a crash
AMD_CONTEXT = "ari-app-amd"
AMD_WAIT_S = 10.0  # AMD() decides within its total analysis time (5 s by default)
SETUP_MARGIN_S = 10.0  # over the ring timeout: the trunk's own early failures and Asterisk's


def channel_id(attempt_id: str) -> str:
    return f"{CHANNEL_PREFIX}{attempt_id}"


class AriOriginator:
    """The dialer's ``Originator`` on a live ``CallManager`` (the service's)."""

    def __init__(self, manager: Any, store: Any | None) -> None:
        self.manager = manager
        self.store = store

    async def call(self, contact: Contact, spec: CampaignSpec, *, attempt_id: str) -> AttemptResult:
        m, cid = self.manager, channel_id(attempt_id)
        events = m.events
        q = events.subscribe(cid)  # before the originate: no event of this channel is missed
        m.starting.add(cid)  # neither the orphan sweeper nor a reconnect adopts it meanwhile
        t0 = time.monotonic()
        try:
            try:
                await m.ari.originate(
                    spec.dial_string(contact.number), channel_id=cid, app_args="outbound",
                    caller_id=spec.caller_id, timeout=int(spec.ring_timeout_s),
                    variables={"ARI_APP_CAMPAIGN": spec.name, "ARI_APP_CONTACT": contact.id},
                    # The Local pair in our codec: left to itself it picks slin192, and after a
                    # takeover rebuilds our bridge the callee then got no audio at all (3 of 4 runs).
                    formats=m.settings.media.format,
                )  # fmt: skip
            except AriError as e:  # e.g. an endpoint Asterisk does not know
                log.warning("outbound.originate_failed", campaign=spec.name, contact=contact.id, error=str(e))
                return AttemptResult(Outcome.INVALID_NUMBER if e.status == 400 else Outcome.FAILED)
            answered, cause = await _until_answered(q, cid, spec.ring_timeout_s + SETUP_MARGIN_S)
            if answered is None:
                await m.ari.hangup(cid)  # still ringing past every timeout: ours to stop
                outcome = outcome_for_cause(cause or 0, answered=False)
                log.info("outbound.not_answered", campaign=spec.name, contact=contact.id, outcome=str(outcome),
                         cause=cause)  # fmt: skip
                return AttemptResult(outcome, cause=cause, duration_s=time.monotonic() - t0)
            ctx = OutboundContext(campaign=spec.name, contact_id=contact.id, attempt_id=attempt_id,
                                  number=contact.number, flow=spec.flow, slots=_slots(contact),
                                  voicemail=spec.voicemail, amd=spec.amd)  # fmt: skip
            if spec.amd == "asterisk":
                verdict = await _asterisk_amd(m.ari, q, cid)
                if verdict is None:  # hung up during detection
                    return AttemptResult(Outcome.ANSWERED_HUMAN, duration_s=time.monotonic() - t0)
                answered, ctx.asterisk_verdict = verdict
            call = await self._run(answered, ctx)
        finally:
            m.starting.discard(cid)
        return await self._result(call, ctx, t0)

    async def _run(self, answered: Event, ctx: OutboundContext) -> Call:
        m = self.manager
        assert answered.channel is not None
        ch = answered.channel
        sid = ctx.attempt_id
        if self.store is not None:
            await self.store.claim_channel(ch.id, sid)
        call = Call(m.settings, m.ari, m.events, ch, list(answered.args), m.new_transport, session_id=sid)
        call.outbound = ctx
        m.run_call(call)
        task = m.tasks.get(ch.id)
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.shield(task)
        return call

    async def _result(self, call: Call, ctx: OutboundContext, t0: float) -> AttemptResult:
        record = await self.store.get(call.info.session_id) if self.store is not None else None
        state = (record.conversation_state or {}) if record is not None else {}
        flow_outcome = state.get("outcome")
        if call.end_reason == "transferred" or (record is not None and record.status == "transferred"):
            flow_outcome = "transferred"
        result: dict[str, Any] = {"answered_by": ctx.answered_by, "amd": ctx.amd_reason,
                                  "end": call.end_reason, "outcome": flow_outcome}  # fmt: skip
        if ctx.answered_by == "machine":
            result["message_left"] = ctx.message_left
            outcome = Outcome.ANSWERED_MACHINE
        else:
            outcome = Outcome.ANSWERED_HUMAN
        return AttemptResult(outcome, session_id=call.info.session_id, flow_result=result,
                             duration_s=time.monotonic() - t0, opted_out=flow_outcome == "opted_out")  # fmt: skip


def _slots(contact: Contact) -> dict[str, Any]:
    slots: dict[str, Any] = dict(contact.data)
    if contact.name:
        slots.setdefault("name", contact.name)
    return slots


async def _events(q: asyncio.Queue[Event], timeout: float) -> AsyncIterator[Event]:
    """The channel's events as they come, for at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            yield await asyncio.wait_for(q.get(), left)
        except TimeoutError:
            return


async def _until_answered(
    q: asyncio.Queue[Event], cid: str, timeout: float
) -> tuple[Event | None, int | None]:
    """(StasisStart, None) once answered, or (None, cause) once the channel is gone."""
    cause: int | None = None
    async for ev in _events(q, timeout):
        if ev.type == "StasisStart" and ev.channel is not None and ev.channel.id == cid:
            return ev, None
        if ev.type == "ChannelHangupRequest" and ev.cause is not None:
            cause = ev.cause
        if ev.type == "ChannelDestroyed":
            return None, ev.cause if ev.cause is not None else cause
    return None, cause


async def _asterisk_amd(ari: Any, q: asyncio.Queue[Event], cid: str) -> tuple[Event, str] | None:
    """Send the answered channel through AMD(); returns its StasisStart back and AMDSTATUS."""
    await ari.continue_in_dialplan(cid, AMD_CONTEXT, "s", 1)
    async for ev in _events(q, AMD_WAIT_S):
        if ev.type == "StasisStart" and ev.args[:1] == ["amd"]:
            return ev, ",".join(ev.args[1:3])
        if ev.type == "ChannelDestroyed":
            return None
    await ari.hangup(cid)
    return None
