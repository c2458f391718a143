"""Events half of the ARI client: the websocket, typed events, per-channel dispatch, reconnect.

Asterisk keeps channels in Stasis when our websocket drops, so a reconnect is survivable:
we reconnect with backoff and call ``on_connect`` so the owner can reconcile its calls with
what Asterisk still holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import defaultdict
from collections.abc import Awaitable, Callable

import aiohttp
import structlog

from ari_app.ari.client import auth_headers
from ari_app.ari.models import Event
from ari_app.config import AriSettings

log = structlog.get_logger(__name__)

CHANNEL_QUEUE_MAX = 1000  # a call's supervisor reads its events at once; a backlog means it is gone
EventHandler = Callable[[Event], Awaitable[None] | None]


class EventStream:
    """Connects to ``/ari/events`` and routes events.

    - ``subscribe(channel_id)`` gives a queue of that channel's events (the call's supervisor reads it);
    - ``wait_for(type, channel_id)`` waits for one specific event (e.g. the media channel's StasisStart);
    - ``on_unrouted`` receives events no subscriber claimed (new calls' StasisStart).
    """

    def __init__(
        self,
        settings: AriSettings,
        on_unrouted: EventHandler | None = None,
        on_connect: Callable[[bool], Awaitable[None]] | None = None,
    ) -> None:
        self.settings = settings
        self.on_unrouted = on_unrouted
        self.on_connect = on_connect
        self.connected = asyncio.Event()
        self.reconnects = 0
        # Asterisk gives an app's events to the last websocket that connected ("ApplicationReplaced"
        # to the older one). Reconnecting would steal them back and the two instances would keep
        # replacing each other, so a replaced stream stays down and tells its owner.
        self.replaced = asyncio.Event()
        self._queues: dict[str, asyncio.Queue[Event]] = {}
        self._overflowed: set[str] = set()
        self._waiters: dict[tuple[str, str], list[asyncio.Future[Event]]] = defaultdict(list)
        self._task: asyncio.Task[None] | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._session: aiohttp.ClientSession | None = None
        self._closing = False

    # ------------------------------------------------------------------ routing
    def subscribe(self, channel_id: str) -> asyncio.Queue[Event]:
        return self._queues.setdefault(channel_id, asyncio.Queue(maxsize=CHANNEL_QUEUE_MAX))

    def unsubscribe(self, channel_id: str) -> None:
        self._queues.pop(channel_id, None)
        self._overflowed.discard(channel_id)

    def expect(self, event_type: str, channel_id: str) -> asyncio.Future[Event]:
        """Register interest *before* the action that causes the event (no race)."""
        fut: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self._waiters[(event_type, channel_id)].append(fut)
        return fut

    async def wait_for(self, fut: asyncio.Future[Event], timeout: float) -> Event:
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            for key, futs in list(self._waiters.items()):
                if fut in futs:
                    futs.remove(fut)
                    if not futs:
                        del self._waiters[key]

    async def dispatch(self, event: Event) -> None:
        routed = False
        for cid in event.channel_ids:
            for fut in self._waiters.pop((event.type, cid), []):
                if not fut.done():
                    fut.set_result(event)
                routed = True
            q = self._queues.get(cid)
            if q is not None:
                if q.full():  # nobody reads this channel's events: keep the newest, say so once
                    q.get_nowait()
                    if cid not in self._overflowed:
                        self._overflowed.add(cid)
                        log.error("ari.events.queue_full", channel=cid, kept=CHANNEL_QUEUE_MAX)
                q.put_nowait(event)
                routed = True
        if not routed and self.on_unrouted is not None:
            res = self.on_unrouted(event)
            if asyncio.iscoroutine(res):
                await res

    async def receive(self, message: str | bytes | dict) -> Event | None:
        """One message as Asterisk sent it (text, or already decoded): parsed, then dispatched.
        The event source (our /ari/events websocket here, a worker's per-call websocket in
        ari/worker.py) feeds it."""
        try:
            if isinstance(message, dict):
                event = Event.model_validate(message)
            else:
                event = Event.model_validate_json(message)
        except ValueError as e:
            log.warning("ari.events.bad_event", error=str(e)[:200])
            return None
        if event.type == "ApplicationReplaced":
            log.error("ari.events.replaced", app=self.settings.app,
                      detail="another instance connected to this ARI app")  # fmt: skip
            self.replaced.set()
        try:
            await self.dispatch(event)
        except Exception:  # a handler bug must not kill the event loop of all calls
            log.exception("ari.events.handler_failed", type=event.type)
        return event

    # ------------------------------------------------------------------ connection
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="ari-events")

    async def close(self) -> None:
        self._closing = True
        if self._ws is not None:
            await self._ws.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._session is not None:
            await self._session.close()

    def reconnect(self) -> None:
        """A replaced stream (standby) connects again and takes the app's events back."""
        if self._task is not None and not self._task.done():
            return
        self.replaced.clear()
        self._task = asyncio.create_task(self._run(), name="ari-events")

    async def drop_connection(self) -> None:
        """Close the websocket as if the network dropped it (used by resilience tests)."""
        if self._ws is not None:
            await self._ws.close()

    async def _run(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers=auth_headers(self.settings))
        delay = self.settings.reconnect_min
        first = True
        url = self.settings.ws_url
        while not self._closing:
            try:
                async with self._session.ws_connect(
                    url, params={"app": self.settings.app, "subscribeAll": "false"}, heartbeat=10
                ) as ws:
                    self._ws = ws
                    self.connected.set()
                    log.info("ari.events.connected", url=url, app=self.settings.app, reconnect=not first)
                    if not first:
                        self.reconnects += 1
                    if self.on_connect is not None:
                        try:
                            await self.on_connect(not first)
                        except Exception:  # reconciling failed: keep the events flowing anyway
                            log.exception("ari.events.on_connect_failed")
                    first = False
                    delay = self.settings.reconnect_min
                    async for msg in ws:
                        if msg.type == aiohttp.WSMsgType.TEXT:
                            await self.receive(msg.data)
            except (aiohttp.ClientError, OSError) as e:
                log.warning("ari.events.connect_failed", url=url, error=str(e), retry_in=round(delay, 2))
            except Exception:  # never silently gone: log it and connect again
                log.exception("ari.events.failed", retry_in=round(delay, 2))
            finally:
                self._ws = None
                self.connected.clear()
            if self._closing or self.replaced.is_set():
                break
            await asyncio.sleep(delay * (0.8 + 0.4 * random.random()))
            delay = min(delay * 2, self.settings.reconnect_max)
