"""calls room: what a worker (ari.mode = outbound) does with the calls its websockets bring.

Why: a worker is stateless — every call's state is in Redis — so any worker can take any call,
and a call whose worker died can be adopted by another one through the takeover machinery
(leases, the saved turn). This glues ``WorkerServer``'s per-call links to the same
``CallManager`` the inbound mode uses: a new caller's StasisStart is accepted with the link's
REST client and events; a caller that is already somebody's session (Asterisk reconnected its
websocket to us after its worker died) is adopted; a link whose socket dies under a live call
hands the call over (lease released, caller left in Stasis) instead of hanging up. It also
drains: no new calls, the calls up run to their end, bounded by ``ari.drain_timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import structlog

from ari_app.ari import AriClient
from ari_app.ari.models import Channel, Event
from ari_app.ari.worker import CallLink, WorkerServer
from ari_app.calls.call import OWN_PREFIX
from ari_app.calls.fallback import send_orphan_to_person
from ari_app.calls.manager import CallManager
from ari_app.config import AriSettings

log = structlog.get_logger(__name__)

# A link registered but given no StasisStart by then is a reconnect (Asterisk 22.10.1 sends
# only ApplicationRegistered then; a new call's StasisStart follows in ~0.5 s): find its caller.
ADOPT_AFTER_S = 1.5
# How long past three lease lifetimes a worker keeps trying to adopt a reconnected call before
# it gives the caller to a person (the dead driver's lease must lapse first).
ADOPT_GRACE_S = 5.0


class LinkScope:
    """The manager as ``adopt_call`` sees it, but with one link's REST client and events."""

    def __init__(self, manager: CallManager, link: CallLink) -> None:
        self._manager = manager
        self.ari = link.ari
        self.events = link.events

    def __getattr__(self, name: str) -> Any:
        return getattr(self._manager, name)


class WorkerCalls:
    def __init__(self, manager: CallManager | None, store: Any, settings: AriSettings) -> None:
        self._manager = manager  # set once the models are loaded; no link is accepted before
        self.store = store
        self.server = WorkerServer(settings, self.on_event, self.on_closed)
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def manager(self) -> CallManager:
        if self._manager is None:
            raise RuntimeError("no call manager yet (models loading)")
        return self._manager

    @manager.setter
    def manager(self, manager: CallManager) -> None:
        self._manager = manager

    @property
    def draining(self) -> bool:
        return self.server.draining

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def on_event(self, ev: Event, link: CallLink) -> None:
        if ev.type == "ApplicationRegistered":
            self._spawn(self._find_caller(link), f"find-caller-{link.app}")
            return
        if ev.type != "StasisStart" or ev.channel is None or ev.channel.id.startswith(OWN_PREFIX):
            return
        ch = ev.channel
        link.channel_ids.add(ch.id)
        if self.manager.is_ours(ch.id):
            return
        known = self.store is not None and await self.store.by_channel(ch.id) is not None
        if known:  # somebody's call already: its worker died and Asterisk came to us
            self._spawn(self._adopt(link, ch), f"adopt-{ch.id}")
            return
        call = await self.manager.accept(ev, link.ari, link.events)
        log.info("worker.call", channel=ch.id, app=link.app, accepted=call is not None,
                 session=call.info.session_id if call else None)  # fmt: skip

    async def _find_caller(self, link: CallLink) -> None:
        """Asterisk named the call (``<app>:<channel name>``) but sent no StasisStart (a
        reconnect of a call already in Stasis): find the caller's channel and adopt it."""
        await asyncio.sleep(ADOPT_AFTER_S)
        if link.channel_ids or not link.app or ":" not in link.app:
            return
        name = link.app.split(":", 1)[1]
        try:
            channels = await link.ari.list_channels()
        except Exception as e:
            log.warning("worker.find_caller_failed", app=link.app, error=str(e))
            return
        for ch in channels:
            if ch.name == name and not ch.id.startswith(OWN_PREFIX):
                link.channel_ids.add(ch.id)
                log.info("worker.reconnected_call", app=link.app, channel=ch.id)
                await self._adopt(link, ch)
                return
        log.warning("worker.caller_not_found", app=link.app, channels=len(channels))

    async def _adopt(self, link: CallLink, ch: Channel) -> None:
        from ari_app.calls.takeover import adopt_call

        # The dead worker's lease has to lapse first (session.lease_ttl): try until it has.
        deadline = time.monotonic() + 3 * self.manager.settings.session.lease_ttl + ADOPT_GRACE_S
        while time.monotonic() < deadline and link in self.server.links:
            try:
                if await adopt_call(LinkScope(self.manager, link), self.store, ch):
                    return
            except Exception as e:
                log.warning("worker.adopt_failed", channel=ch.id, error=str(e))
            if self.manager.is_ours(ch.id):
                return
            await asyncio.sleep(0.5)
        if link not in self.server.links or self.manager.is_ours(ch.id):
            return  # the socket went (Asterisk reconnects elsewhere), or the call is ours after all
        # Nobody can drive this call from here (its record unreachable, its lease never freed):
        # the caller gets an apology and a person, never the silence of an abandoned bridge.
        log.warning("worker.adopt_gave_up", channel=ch.id, app=link.app)
        await send_orphan_to_person(link.ari, ch.id, self.manager.settings, "adopt_failed")

    async def on_closed(self, link: CallLink) -> None:
        """The socket is gone. A call still up is handed over, not hung up: if Asterisk brings
        it back (a reconnect, maybe to another worker), that worker adopts it."""
        for cid in link.channel_ids:
            call = self.manager.calls.get(cid)
            if call is None or call.hung_up.is_set() or call.handed_off:
                continue
            log.warning("worker.link_lost", channel=cid, session=call.info.session_id, app=link.app)
            call.detach()
            task = self.manager.tasks.get(cid)
            if task is not None:
                task.cancel()

    def any_rest(self) -> AriClient | None:
        """The REST client of one live call (it reaches that call's Asterisk), or None."""
        return next((link.ari for link in self.server.links if link.app), None)

    def readiness(self) -> dict[str, bool]:
        return {"accepting": not self.server.draining}

    async def drain(self, timeout: float) -> None:
        """Take no new calls (readiness false at once, new websockets refused) and let the calls
        up finish, for at most ``timeout`` seconds."""
        self.server.draining = True
        if self._manager is None:
            return
        n = len(self.manager.calls)
        log.info("worker.draining", calls=n, timeout_s=timeout)
        deadline = time.monotonic() + timeout
        # Polled: the calls and links are the manager's and the server's, ending on their own.
        while (self.manager.calls or self.server.links) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.2)
        left = len(self.manager.calls)
        log.info("worker.drained", calls_at_start=n, calls_left=left)

    async def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        await self.server.close_all()
