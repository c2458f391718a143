"""One call, from StasisStart to the last released resource.

A ``Call`` is a supervisor: it answers, builds the mixing bridge and the ExternalMedia leg,
runs the conversation, and on *any* end (caller hang-up, transfer, error, shutdown) destroys
what it created. A failure inside one call never reaches another.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog

from ari_app.ari import AriClient, AriError, EventStream
from ari_app.ari.models import Channel, Event
from ari_app.config import Settings
from ari_app.media.transport import MediaTransport
from ari_app.outbound.context import OutboundContext

log = structlog.get_logger(__name__)

OWN_PREFIX = "iva-"  # ids of channels/bridges we create: never mistaken for new callers
DIGITS_QUEUE_MAX = 64  # keys not yet grouped into an entry
HANGUP_EVENTS = {"StasisEnd", "ChannelDestroyed", "ChannelHangupRequest"}


@dataclass(frozen=True)
class Digit:
    digit: str
    duration_ms: int
    at: float  # monotonic time we received the event


async def _finish(coro: Awaitable[None]) -> None:
    """Run clean-up to the end even if our task is cancelled meanwhile (then re-raise)."""
    task = asyncio.ensure_future(coro)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError


class CallerHungUp(Exception):
    """The caller left; the conversation is cancelled and the call torn down."""


@dataclass
class CallInfo:
    session_id: str
    channel_id: str
    caller_number: str
    caller_name: str
    called: str
    args: list[str]
    started_at: float = field(default_factory=time.time)


Conversation = Callable[["Call"], Awaitable[None]]
TransportFactory = Callable[[], Awaitable[MediaTransport]]


class Call:
    def __init__(
        self,
        settings: Settings,
        ari: AriClient,
        events: EventStream,
        channel: Channel,
        args: list[str],
        new_transport: TransportFactory,
        session_id: str | None = None,
    ) -> None:
        self.settings = settings
        self.ari = ari
        self.events = events
        self.channel = channel
        self.info = CallInfo(
            session_id=session_id or uuid.uuid4().hex,
            channel_id=channel.id,
            caller_number=channel.caller.number,
            caller_name=channel.caller.name,
            called=args[1] if len(args) > 1 else channel.dialplan.exten,
            args=args,
        )
        self._new_transport = new_transport
        self.media: MediaTransport | None = None
        self.bridge_id: str | None = None
        self.media_channel_id: str | None = None
        self.agent_channel_id: str | None = None  # set once a warm transfer connected an agent
        self.agent_events: asyncio.Queue[Event] | None = None
        self.digits: asyncio.Queue[Digit] = asyncio.Queue(maxsize=DIGITS_QUEUE_MAX)
        self.hung_up = asyncio.Event()
        self.resumed = False  # adopted from a dead instance (takeover)
        self.resume_state: dict | None = None  # the conversation state saved before the crash
        self.resume_transfer: dict | None = None  # a warm transfer the dead instance was making
        self.rejoined = False  # taken over while bridged to a person: bridge_id/agent_channel_id set
        self.handed_off = False  # the caller is no longer ours (blind transfer, fallback): no hang-up
        self.detached = False  # handed over to another instance: leave caller, bridges and session be
        self.outbound: OutboundContext | None = None  # a call we placed (campaign), not one we took
        self.end_reason = "unknown"
        self._dtmf_dropped = False
        self._queue = events.subscribe(channel.id)
        self.log = log.bind(session=self.info.session_id, channel=channel.id)

    # ------------------------------------------------------------------ lifecycle
    async def run(self, conversation: Conversation) -> None:
        pump = asyncio.create_task(self._pump_events(), name=f"events-{self.channel.id}")
        convo: asyncio.Task[None] | None = None
        fault: str | None = None  # set when the call must go to the failure fallback
        try:
            if not self.rejoined:
                await self.setup()
            convo = asyncio.create_task(conversation(self), name=f"convo-{self.channel.id}")
            if await self._until_over(convo):
                convo.result()  # re-raise conversation errors into the except below
                self.end_reason = self.end_reason if self.end_reason != "unknown" else "completed"
            elif self.hung_up.is_set():
                self.end_reason = "caller_hangup"
            else:
                fault = self.end_reason = "max_call_length"
                self.log.warning("call.max_length", max_call_s=self.settings.calls.max_call_s)
        except CallerHungUp:
            self.end_reason = "caller_hangup"
        except asyncio.CancelledError:
            self.end_reason = "shutdown"
            raise
        except AriError as e:
            if self.hung_up.is_set():
                self.end_reason = "caller_hangup"  # e.g. 404 because the caller just left
            else:
                fault = self.end_reason = "error"
                self.log.error("call.ari_error", error=str(e))
        except Exception:
            fault = self.end_reason = "error"
            self.log.exception("call.failed")
        finally:
            if convo is not None and not convo.done():
                convo.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await convo
            if fault is not None and not self.detached:
                from ari_app.calls.fallback import fail_over

                await _finish(fail_over(self, fault, apologised=False))
            pump.cancel()
            await _finish(self.teardown())

    async def _until_over(self, convo: asyncio.Task[None]) -> bool:
        """Wait for the conversation to end (True), the caller to leave or the agent part of
        the call to reach calls.max_call_s (False). Time bridged to a human is not limited."""
        limit = self.settings.calls.max_call_s or None
        hung = asyncio.create_task(self.hung_up.wait())
        try:
            while True:
                done, _ = await asyncio.wait(
                    {convo, hung}, timeout=limit, return_when=asyncio.FIRST_COMPLETED
                )
                if convo in done:
                    return True
                if hung in done or self.agent_channel_id is None:
                    return False
                limit = None  # with a person now: the limit no longer applies
        finally:
            hung.cancel()

    async def setup(self) -> None:
        """Answer, bridge, and attach our RTP leg (waiting for its StasisStart: 422 race)."""
        t0 = time.monotonic()
        if self.channel.state != "Up":
            await self.ari.answer(self.channel.id)
        self.bridge_id = f"{OWN_PREFIX}br-{self.info.session_id}"
        await self.ari.create_bridge(self.bridge_id, type="mixing", name=f"iva {self.info.session_id}")
        await self.ari.add_to_bridge(self.bridge_id, self.channel.id)
        self.media = await self._new_transport()
        self.media_channel_id = f"{OWN_PREFIX}media-{self.info.session_id}"
        started = self.events.expect("StasisStart", self.media_channel_id)
        leg = await self.ari.external_media(
            f"{self.settings.media.rtp_host}:{self.media.local_port}",
            format=self.settings.media.format,
            channel_id=self.media_channel_id,
        )
        # Asterisk names its side of the RTP stream: lets us speak before the caller does.
        cv = leg.channelvars or {}
        addr, port = cv.get("UNICASTRTP_LOCAL_ADDRESS"), cv.get("UNICASTRTP_LOCAL_PORT")
        if addr and port and hasattr(self.media, "set_remote"):
            self.media.set_remote(str(addr), int(port))
        await self.events.wait_for(started, timeout=5)
        self.events.subscribe(self.media_channel_id)
        await self.ari.add_to_bridge(self.bridge_id, self.media_channel_id)
        self.log.info("call.ready", setup_ms=round((time.monotonic() - t0) * 1000, 1),
                      caller=self.info.caller_number, rtp_port=self.media.local_port)  # fmt: skip

    async def teardown(self) -> None:
        """Release everything we created; every step tolerates 'already gone'. A detached call
        (handed to another instance) keeps its bridge and any agent leg: the adopter owns them."""
        if self.agent_channel_id and not self.detached:
            with contextlib.suppress(Exception):
                await self.ari.hangup(self.agent_channel_id)
        if self.agent_channel_id:
            self.events.unsubscribe(self.agent_channel_id)
        if self.media_channel_id:
            with contextlib.suppress(Exception):
                await self.ari.hangup(self.media_channel_id)
            self.events.unsubscribe(self.media_channel_id)
        if self.bridge_id and not self.detached:
            with contextlib.suppress(Exception):
                await self.ari.destroy_bridge(self.bridge_id)
        if self.media is not None:
            with contextlib.suppress(Exception):
                await self.media.close()
        if not self.handed_off and not self.hung_up.is_set():
            with contextlib.suppress(Exception):
                await self.ari.hangup(self.channel.id)
        self.events.unsubscribe(self.channel.id)
        self.log.info("call.ended", reason=self.end_reason)

    # ------------------------------------------------------------------ events
    async def _pump_events(self) -> None:
        while True:
            ev: Event = await self._queue.get()
            self.handle_event(ev)

    def handle_event(self, ev: Event) -> None:
        if ev.channel is None or ev.channel.id != self.channel.id:
            return
        self.log.debug("call.event", type=ev.type, cause=ev.cause_txt)
        if ev.type == "ChannelDtmfReceived" and ev.digit:
            if self.digits.full():  # a key flood faster than any entry: the excess is dropped
                if not self._dtmf_dropped:
                    self._dtmf_dropped = True
                    self.log.warning("call.dtmf_dropped", queued=DIGITS_QUEUE_MAX)
                return
            self.digits.put_nowait(Digit(ev.digit, ev.duration_ms or 0, time.monotonic()))
        elif ev.type in HANGUP_EVENTS and not self.handed_off:
            self.hung_up.set()

    def detach(self) -> None:
        """Stop driving this call without ending it (shutdown or replaced instance): our media
        leg goes, the caller stays in Stasis and the session stays open for the instance that
        takes it over."""
        self.detached = True
        self.handed_off = True

    def owned_channels(self) -> list[str]:
        return [c for c in (self.channel.id, self.media_channel_id, self.agent_channel_id) if c]

    def caller_gone(self) -> None:
        """Called by the manager when a reconnect finds the caller's channel gone."""
        self.hung_up.set()

    # ------------------------------------------------------------------ helpers for conversations
    async def wait_until_either_leaves(self) -> None:
        """After a warm transfer: the call lasts until the caller or the agent hangs up."""
        from ari_app.transfer.warm import until_gone

        waits = {asyncio.create_task(self.hung_up.wait())}
        if self.agent_events is not None and self.agent_channel_id:
            waits.add(asyncio.create_task(until_gone(self.agent_events, self.agent_channel_id)))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in waits:
                t.cancel()

    async def next_digit(self, timeout: float | None = None) -> Digit | None:
        try:
            return await asyncio.wait_for(self.digits.get(), timeout)
        except TimeoutError:
            return None
