"""outbound: the service's campaign runner — dials every running campaign, in the active instance.

Why in the agent process: the calls a campaign places come back to our ARI app's websocket, so
only the instance that holds the app (the active one, see ``calls.standby``) can run them. One
``Dialer`` per running campaign; a campaign paused, cancelled or finished stops its dialer (its
calls in progress go on). After a restart each campaign is recovered first: contacts claimed but
never dialled go back in the queue, a call still up (adopted by the takeover) is watched until
it ends and then recorded, and a call that is gone is reported ``interrupted``, never re-dialled.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import structlog

from ari_app.ari.errors import AriNotFound
from ari_app.calls.overflow import max_calls
from ari_app.config import Settings
from ari_app.outbound.dialer import Dialer
from ari_app.outbound.dnc import DncList
from ari_app.outbound.errors import CampaignError
from ari_app.outbound.originate import CHANNEL_PREFIX, AriOriginator, channel_id
from ari_app.outbound.outcomes import Outcome
from ari_app.outbound.pacer import Pacer
from ari_app.outbound.registry import Campaigns
from ari_app.outbound.results import ResultsWebhook
from ari_app.outbound.state import CampaignState

log = structlog.get_logger(__name__)

POLL_S = 2.0
LIVE_POLL_S = 2.0


class CampaignRunner:
    def __init__(self, settings: Settings, manager: Any, store: Any, active: Callable[[], bool]) -> None:
        self.settings = settings
        self.manager = manager
        self.store = store
        self.active = active
        redis = store.redis.client
        self.campaigns = Campaigns(redis, store.keys.prefix, store.protector.cipher)
        # Without session.encryption_key no campaign can be stored, so none runs here.
        self.dnc = (
            DncList(redis, self.campaigns.keys, store.protector.cipher) if store.protector.encrypts else None
        )
        self.originator = AriOriginator(manager, store)
        self.dialers: dict[str, asyncio.Task[None]] = {}
        self._watchers: set[asyncio.Task[None]] = set()
        self._live: set[str] = set()  # channels of calls that outlived their dialer, being watched
        self._said_no_key = False

    async def run(self) -> None:
        try:
            while True:
                if self.active():
                    await self._start_running()
                else:  # a standby dials nothing: the active instance does
                    self._stop_dialers()
                await asyncio.sleep(POLL_S)
        finally:
            self._stop_dialers()
            for t in self._watchers:
                t.cancel()

    def outbound_calls(self) -> int:
        # By channel id: a campaign call adopted after a restart is one too (it has no context),
        # and so is one recovery found live that the takeover has not adopted yet.
        ours = {cid for cid in self.manager.calls if cid.startswith(CHANNEL_PREFIX)}
        return len(ours | self._live)

    def inbound_calls(self) -> int:
        return len(self.manager.calls) - self.outbound_calls()

    async def _start_running(self) -> None:
        names = await self.campaigns.names()
        if self.dnc is None:
            if names and not self._said_no_key:
                log.error("campaign.disabled", campaigns=names, reason="session.encryption_key is not set "
                          "on this instance: contacts are stored encrypted, so no campaign can run here")  # fmt: skip
                self._said_no_key = True
            return
        for name in names:
            task = self.dialers.get(name)
            if task is not None and not task.done():
                continue
            state = await self.campaigns.state(name)
            if await state.campaign_status() != "running":
                continue
            self.dialers[name] = asyncio.create_task(self._dial(state), name=f"campaign-{name}")

    async def _dial(self, state: CampaignState) -> None:
        """Run one campaign's dialer; a campaign that cannot run is paused with the reason (not
        retried every poll)."""
        try:
            await self._run_dialer(state)
        except CampaignError as e:
            log.error("campaign.cannot_run", campaign=state.name, error=str(e))
            await state.pause(str(e))
        except Exception as e:
            log.exception("campaign.failed", campaign=state.name)
            await state.pause(f"stopped by an internal error ({type(e).__name__}: {e}); see the agent's log")

    async def _run_dialer(self, state: CampaignState) -> None:
        spec = state.spec
        pacer = Pacer(spec.pacing, max_calls(self.settings.capacity), self.inbound_calls,
                      outbound_calls=self.outbound_calls)  # fmt: skip
        recovered = await state.recover(self._is_live)
        if recovered.returned or recovered.live or recovered.interrupted:
            log.warning("campaign.recovered", campaign=spec.name, returned=len(recovered.returned),
                        live=len(recovered.live), interrupted=recovered.interrupted)  # fmt: skip
        for contact_id in recovered.live:  # its call counts against max_concurrent until it ends
            self._live.add(channel_id(await state.attempt_of(contact_id)))
            pacer.hold()
            self._watch(state, contact_id, pacer)
        webhook = ResultsWebhook.from_spec(spec)
        assert self.dnc is not None  # _start_running runs no dialer without a key
        dialer = Dialer(spec, state, self.dnc, self.originator, pacer,
                        on_progress=_log_progress, on_finished=webhook.post if webhook else None)  # fmt: skip
        log.info("campaign.dialing", campaign=spec.name, flow=spec.flow)
        try:
            await dialer.run()
        finally:
            if webhook is not None:
                await webhook.close()

    def _stop_dialers(self) -> None:
        for task in self.dialers.values():
            task.cancel()
        self.dialers.clear()

    async def _is_live(self, attempt_id: str) -> bool:
        try:
            await self.manager.ari.get_channel(channel_id(attempt_id))
        except AriNotFound:
            return False
        return True

    def _watch(self, state: CampaignState, contact_id: str, pacer: Pacer) -> None:
        task = asyncio.create_task(self._until_over(state, contact_id), name=f"campaign-live-{contact_id}")
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)
        task.add_done_callback(lambda _t: pacer.release())

    async def _until_over(self, state: CampaignState, contact_id: str) -> None:
        """A call that outlived its dialer (adopted after a restart): record it once it ends."""
        attempt_id = await state.attempt_of(contact_id)
        t0 = time.monotonic()
        try:
            while await self._is_live(attempt_id):  # noqa: ASYNC110 - Asterisk holds the truth, not an event of ours
                await asyncio.sleep(LIVE_POLL_S)
        finally:
            self._live.discard(channel_id(attempt_id))
        record = None
        with contextlib.suppress(Exception):
            record = await self.store.get(attempt_id)
        cs = (record.conversation_state or {}) if record is not None else {}
        flow_result = {"outcome": cs.get("outcome"), "end": record.end_reason if record else None,
                       "note": "finished after an agent restart"}  # fmt: skip
        await state.record_outcome(contact_id, attempt_id, Outcome.ANSWERED_HUMAN, session_id=attempt_id,
                                   flow_result=flow_result, duration_s=time.monotonic() - t0)  # fmt: skip
        if cs.get("outcome") == "opted_out":
            contact = await state.contact(contact_id)
            if contact is not None and self.dnc is not None:
                await self.dnc.add(contact.number, f"opted out on a call of campaign {state.spec.name}")


def _log_progress(status: Any) -> None:
    log.info("campaign.progress", campaign=status.name, status=status.status, remaining=status.remaining,
             outcomes=status.outcomes)  # fmt: skip
