"""outbound: the dialer — the loop that runs one campaign until it is done, paused or cancelled.

Why: each step is ordered so nobody is called who should not be: claim a due contact (the state
makes it ours, see ``state``), skip it if the number is on the do-not-call list (never dialled),
put it back if it is outside its calling window, wait for the pacer, mark it originating, and
only then ask the ``Originator`` to call. Up to ``max_concurrent`` attempts run as tasks; the
loop checks the campaign's status between calls, so a pause or cancel stops new calls without
hanging up the ones in progress (they are awaited before ``run`` returns).

A trunk that rejects everything would otherwise burn every contact's attempts in minutes: after
``pause_on_failures`` trunk failures in a row (rejected, failed, congestion) the campaign pauses
itself with a reason that says so.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog

from ari_app.outbound.campaign import CampaignSpec
from ari_app.outbound.contacts import Contact
from ari_app.outbound.dnc import DncList
from ari_app.outbound.outcomes import TRUNK_FAILURES, Outcome
from ari_app.outbound.pacer import Pacer
from ari_app.outbound.records import FINAL, CampaignStatus, Claim, ContactResult
from ari_app.outbound.state import CampaignState
from ari_app.outbound.window import next_allowed

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class AttemptResult:
    outcome: Outcome
    session_id: str | None = None
    flow_result: dict[str, Any] | None = None
    duration_s: float = 0.0
    opted_out: bool = False  # the person asked not to be called again: added to the DNC list
    cause: int | None = None  # Q.850 cause of an unanswered call (for the pause reason)


class Originator(Protocol):
    """Places one call and runs the flow on it; returns when the call has ended.

    ``attempt_id`` names the call (e.g. its channel id): after a restart ``CampaignState.recover``
    asks whether the call with that id is still live.
    """

    async def call(self, contact: Contact, spec: CampaignSpec, *, attempt_id: str) -> AttemptResult: ...


Progress = Callable[[CampaignStatus], Awaitable[None] | None]
Finished = Callable[[ContactResult], Awaitable[None] | None]
_PAUSE_WORDING = {
    Outcome.REJECTED: "the trunk rejected {n} calls in a row",
    Outcome.CONGESTION: "{n} calls in a row met congestion",
    Outcome.FAILED: "{n} calls in a row failed",
}


def pause_reason(outcome: Outcome, n: int, cause: int | None) -> str:
    """E.g. ``the trunk rejected 5 calls in a row (cause 21): paused``."""
    text = _PAUSE_WORDING.get(outcome, _PAUSE_WORDING[Outcome.FAILED]).format(n=n)
    return f"{text}{f' (cause {cause})' if cause is not None else ''}: paused"


class Dialer:
    def __init__(
        self,
        spec: CampaignSpec,
        state: CampaignState,
        dnc: DncList,
        originator: Originator,
        pacer: Pacer,
        *,
        on_progress: Progress | None = None,
        on_finished: Finished | None = None,  # a contact reached a final status (e.g. the webhook)
        clock: Callable[[], float] = time.time,
        idle_poll_s: float = 1.0,
    ) -> None:
        self.spec, self.state, self.dnc, self.originator, self.pacer = spec, state, dnc, originator, pacer
        self.on_progress, self.on_finished = on_progress, on_finished
        self.clock, self.idle_poll_s = clock, idle_poll_s
        self.tasks: set[asyncio.Task[None]] = set()
        self.failure_streak = 0

    async def run(self) -> CampaignStatus:
        """Until nothing is left to call (status done), or the campaign is paused or cancelled."""
        try:
            while await self.state.campaign_status() == "running":
                if not await self.pacer.wait_for_room(self.idle_poll_s):
                    continue  # full (calls up, or inbound callers): look at the status again
                claim = await self.state.claim_next(self.clock())
                if claim is None:
                    if not self.tasks and await self.state.mark_done():
                        break
                    await self._idle()
                elif await self._admissible(claim):
                    await self._start(claim)
        finally:
            if self.tasks:
                await asyncio.gather(*self.tasks, return_exceptions=True)
        status = await self.state.status()
        await self._notify(self.on_progress, status)
        log.info("campaign.stopped", campaign=self.spec.name, status=status.status, reason=status.reason)
        return status

    async def _idle(self) -> None:
        """Nothing due: wait for a call to end or the next contact to fall due (re-checking the
        status at least every ``idle_poll_s``)."""
        due = await self.state.next_due()
        timeout = self.idle_poll_s if due is None else max(0.0, min(self.idle_poll_s, due - self.clock()))
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        else:
            await asyncio.sleep(timeout)

    async def _admissible(self, claim: Claim) -> bool:
        """DNC and window checks; a contact that fails one is settled here (never dialled)."""
        contact = claim.contact
        if await self.dnc.contains(contact.number):
            await self.state.mark_dnc(claim, "on the do-not-call list")
            await self._finished(contact.id)
            await self._notify(self.on_progress, await self.state.status())
            return False
        now = self.clock()
        opens = self._opens(contact, now)
        if opens is not None:
            await self.state.release(claim, opens, now)
            return False
        return True

    def _opens(self, contact: Contact, now: float) -> float | None:
        """When the contact's window next opens; None if it is open now."""
        now_dt = datetime.fromtimestamp(now, UTC)
        allowed = next_allowed(now_dt, contact.timezone, self.spec.window)
        return allowed.timestamp() if allowed > now_dt else None  # datetimes: no float rounding

    async def _start(self, claim: Claim) -> None:
        await self.pacer.acquire()
        # Waiting for a token may have crossed the window's end or a pause: checked again.
        now = self.clock()
        opens = self._opens(claim.contact, now)
        if opens is not None or not await self.state.mark_originating(claim, now):
            self.pacer.release()
            await self.state.release(claim, opens or now, now)
            return
        task = asyncio.create_task(self._attempt(claim), name=f"outbound-{claim.attempt_id}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _attempt(self, claim: Claim) -> None:
        contact = claim.contact
        try:
            result = await self.originator.call(contact, self.spec, attempt_id=claim.attempt_id)
        except Exception as e:  # we cannot know whether the call happened: failed, never retried
            log.exception("campaign.originate_failed", campaign=self.spec.name, contact=contact.id)
            result = AttemptResult(Outcome.FAILED, flow_result={"error": f"{type(e).__name__}: {e}"})
        finally:
            self.pacer.release()
        try:
            await self._settle(claim, result)
        except Exception:  # e.g. Redis away: the contact stays dialing, recover reports it
            log.exception("campaign.record_failed", campaign=self.spec.name, contact=contact.id)

    async def _settle(self, claim: Claim, result: AttemptResult) -> None:
        contact = claim.contact
        if result.opted_out:
            await self.dnc.add(contact.number, f"opted out during campaign {self.spec.name}")
        status = await self.state.record_outcome(
            contact.id, claim.attempt_id, result.outcome, cause=result.cause, session_id=result.session_id,
            flow_result=result.flow_result, duration_s=result.duration_s, now=self.clock(),
        )  # fmt: skip
        log.info("campaign.attempt", campaign=self.spec.name, contact=contact.id, attempt=claim.attempt,
                 outcome=result.outcome.value, cause=result.cause, status=status)  # fmt: skip
        await self._count_failure(result)
        if status in FINAL:
            await self._finished(contact.id)
        await self._notify(self.on_progress, await self.state.status())

    async def _finished(self, contact_id: str) -> None:
        if self.on_finished is not None and (done := await self.state.contact(contact_id)) is not None:
            await self._notify(self.on_finished, done)

    async def _count_failure(self, result: AttemptResult) -> None:
        if result.outcome not in TRUNK_FAILURES:
            self.failure_streak = 0
            return
        self.failure_streak += 1
        limit = self.spec.pause_on_failures
        if limit and self.failure_streak >= limit:
            reason = pause_reason(result.outcome, self.failure_streak, result.cause)
            if await self.state.pause(reason):
                log.warning("campaign.paused", campaign=self.spec.name, reason=reason)

    async def _notify(self, callback: Callable[[Any], Awaitable[None] | None] | None, value: Any) -> None:
        """A progress or webhook callback that fails is logged; it never stops the campaign."""
        if callback is None:
            return
        try:
            maybe = callback(value)
            if inspect.isawaitable(maybe):
                await maybe
        except Exception:
            log.exception("campaign.callback_failed", campaign=self.spec.name)
