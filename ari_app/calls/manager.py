"""Accepts new calls from the events stream and supervises each in its own task."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable

import structlog

from ari_app.agent.metrics import ACTIVE_CALLS
from ari_app.ari import AriClient, EventStream
from ari_app.ari.models import Channel, Event
from ari_app.calls.call import OWN_PREFIX, Call, Conversation
from ari_app.calls.overflow import max_calls, overflow
from ari_app.config import Settings
from ari_app.media.ports import PortPool
from ari_app.media.rtp_transport import RtpTransport

log = structlog.get_logger(__name__)


class CallManager:
    def __init__(
        self,
        settings: Settings,
        conversation: Conversation,
        *,
        on_orphan: Callable[[Channel], asyncio.Future[None] | None] | None = None,
        claim: Callable[[str, str], Awaitable[bool]] | None = None,
    ) -> None:
        self.settings = settings
        self.conversation = conversation
        self.ari = AriClient(settings.ari)
        self.events = EventStream(settings.ari, on_unrouted=self._on_event, on_connect=self._on_connect)
        self.ports = PortPool(
            settings.media.rtp_host, settings.media.rtp_port_min, settings.media.rtp_port_max
        )
        self.calls: dict[str, Call] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.on_orphan = on_orphan
        # Makes a new caller channel ours before anything else happens to it (session lease).
        self.claim = claim
        self.starting: set[str] = set()  # channels being claimed or adopted right now
        self.finished: list[Call] = []  # recent calls, for status and tests
        self._overflowing: set[asyncio.Task[None]] = set()  # callers turned away (capacity)

    async def start(self) -> None:
        await self.ari.info()  # fail fast with a clear AriConnectionError (URL, credentials)
        self.events.start()
        await asyncio.wait_for(self.events.connected.wait(), self.settings.ari.request_timeout)

    async def stop(self, *, hand_over: bool = False) -> None:
        """Stop every call: hang up (default) or hand over to the next instance (calls stay in
        Stasis with their session; another instance's takeover adopts them)."""
        if hand_over:
            for call in self.calls.values():
                call.detach()
            if self.calls:
                log.info("calls.handed_over", calls=len(self.calls), reason="shutdown")
        tasks = list(self.tasks.values())
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        await self.events.close()
        await self.ari.close()

    async def new_transport(self) -> RtpTransport:
        return await RtpTransport.open(self.ports, self.settings.media.format)

    # ------------------------------------------------------------------ events
    def is_ours(self, channel_id: str) -> bool:
        """This instance drives the channel's call, or is claiming or adopting it right now."""
        return channel_id in self.calls or channel_id in self.starting

    def run_call(self, call: Call) -> None:
        self.calls[call.channel.id] = call
        self.tasks[call.channel.id] = asyncio.create_task(
            self._supervise(call), name=f"call-{call.channel.id}"
        )

    async def _on_event(self, ev: Event) -> None:
        await self.accept(ev, self.ari, self.events)

    async def accept(self, ev: Event, ari: AriClient, events: EventStream) -> Call | None:
        """A new caller's StasisStart: claim it and run its call with ``ari``/``events`` (this
        instance's own in inbound mode; the call's websocket in worker mode, ari/worker.py)."""
        if ev.type != "StasisStart" or ev.channel is None:
            return None
        ch = ev.channel
        if ch.id.startswith(OWN_PREFIX) or self.is_ours(ch.id):
            return None  # our own legs (media, snoop, agent) are handled by their call
        if len(self.calls) >= max_calls(self.settings.capacity):
            task = asyncio.create_task(overflow(ari, ch, self.settings), name=f"overflow-{ch.id}")
            self._overflowing.add(task)
            task.add_done_callback(self._overflowing.discard)
            return None
        sid = uuid.uuid4().hex
        self.starting.add(ch.id)
        try:
            if self.claim is not None and not await self.claim(ch.id, sid):
                log.warning("call.claimed_elsewhere", channel=ch.id)
                return None
            call = Call(self.settings, ari, events, ch, ev.args, self.new_transport, sid)
            self.run_call(call)
            return call
        finally:
            self.starting.discard(ch.id)

    async def _supervise(self, call: Call) -> None:
        ACTIVE_CALLS.inc()
        try:
            await call.run(self.conversation)
        finally:
            ACTIVE_CALLS.dec()
            self.calls.pop(call.channel.id, None)
            self.tasks.pop(call.channel.id, None)
            self.finished = [*self.finished[-99:], call]

    async def _on_connect(self, reconnected: bool) -> None:
        """After a websocket drop, align our calls with what Asterisk still holds."""
        if not reconnected:
            return
        try:
            live = {c.id: c for c in await self.ari.list_channels()}
        except Exception as e:
            log.warning("calls.reconcile_failed", error=str(e))
            return
        for cid, call in list(self.calls.items()):
            if cid not in live:
                log.info("calls.reconcile.caller_gone", channel=cid)
                call.caller_gone()
                continue
            sources = [f"channel:{c}" for c in call.owned_channels() if c in live]
            if call.bridge_id:
                sources.append(f"bridge:{call.bridge_id}")
            try:
                await self.ari.subscribe(*sources)
            except Exception as e:
                log.warning("calls.resubscribe_failed", channel=cid, error=str(e))
        for cid, ch in live.items():
            if ch.in_app(self.settings.ari.app) and not cid.startswith(OWN_PREFIX) and not self.is_ours(cid):
                log.info("calls.reconcile.orphan", channel=cid)
                if self.on_orphan is not None:
                    try:
                        res = self.on_orphan(ch)
                        if res is not None:
                            await res
                    except Exception:  # one bad orphan must not stop the others (or the events)
                        log.exception("calls.reconcile.adopt_failed", channel=cid)
        log.info("calls.reconciled", live=len(self.calls))
