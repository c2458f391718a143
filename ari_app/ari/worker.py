"""ari room: the worker's end of Asterisk's outbound ARI websockets (ari.mode = outbound).

Why: with ``connection_type = per_call_config`` Asterisk opens one websocket per call to us
(through a balancer), so any number of workers can be active at once. Each connection is one
``CallLink``: Asterisk first says ``ApplicationRegistered`` with the per-call app name
(``ari-app-ws:PJSIP/caller-0000003b``: the channels we create for the call must join it, or
their events go nowhere), then ``StasisStart``. The link's events go through the same
``EventStream`` routing the inbound mode uses, and its REST goes back over the same socket
(``WsRestTransport``). A connection without the configured Basic credentials is refused (401),
and so is every new one while the worker drains (503: the balancer sends the retry elsewhere).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import WSMsgType, web

from ari_app.ari.client import AriClient
from ari_app.ari.events import EventStream
from ari_app.ari.models import Event
from ari_app.ari.ws_rest import WsRestTransport
from ari_app.config import AriSettings

log = structlog.get_logger(__name__)

PROTOCOL = "ari"  # the subprotocol Asterisk asks for (websocket_client.conf protocols = ari)


class CallLink:
    """One Asterisk websocket = one call: its REST client, its event routing, its app name."""

    def __init__(self, settings: AriSettings, send_text: Callable[[str], Awaitable[None]], peer: str) -> None:
        self.peer = peer
        self.transport = WsRestTransport(send_text, settings.request_timeout, f"the websocket from {peer}")
        self.ari = AriClient(settings, transport=self.transport)
        self.ari.per_call_app = True
        self.events = EventStream(settings)  # no connection of its own: fed by receive()
        self.events.connected.set()
        self.app: str | None = None  # the per-call app, from ApplicationRegistered
        self.registered = asyncio.Event()
        self.channel_ids: set[str] = set()  # callers this link brought (normally one)
        self.close: Callable[[bytes], Awaitable[Any]] | None = None  # closes the socket

    async def receive(self, text: str | bytes) -> Event | None:
        try:
            data = json.loads(text)
        except ValueError:
            log.warning("worker.bad_message", peer=self.peer, text=str(text)[:200])
            return None
        if not isinstance(data, dict):
            return None
        kind = data.get("type")
        if kind == "RESTResponse":
            if not self.transport.resolve(data):
                log.warning("worker.late_rest_response", peer=self.peer, request_id=data.get("request_id"))
            return None
        if kind == "ApplicationRegistered" and data.get("application"):
            self.app = self.ari.app = str(data["application"])
            self.registered.set()
        return await self.events.receive(data)

    def closed(self, reason: str) -> None:
        self.transport.fail_all(reason)
        self.events.connected.clear()


LinkHandler = Callable[[Event, CallLink], Awaitable[None]]
ClosedHandler = Callable[[CallLink], Awaitable[None]]


def basic_auth_ok(header: str | None, username: str, password: str) -> bool:
    if not header or not header.lower().startswith("basic "):
        return False
    try:
        user, _, given = base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return hmac.compare_digest(user.encode(), username.encode()) & hmac.compare_digest(
        given.encode(), password.encode()
    )


class WorkerServer:
    """Serves ``settings.worker_path`` on the agent's web server. ``on_event`` gets every event
    no call claimed (a new caller's StasisStart) with its link; ``on_closed`` runs when a link's
    socket is gone (the caller left Stasis, or Asterisk or the network went away)."""

    def __init__(self, settings: AriSettings, on_event: LinkHandler, on_closed: ClosedHandler) -> None:
        self.settings = settings
        self.on_event = on_event
        self.on_closed = on_closed
        self.draining = False
        self.ready: Callable[[], bool] = lambda: True  # the service's /readyz checks
        self.links: set[CallLink] = set()
        self.accepted = 0  # connections served since start (status, tests)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get(self.settings.worker_path, self.handle)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        peer = request.remote or "?"
        want = self.settings.worker_password.get_secret_value()
        if not basic_auth_ok(request.headers.get("Authorization"), self.settings.worker_username, want):
            log.warning("worker.refused", peer=peer, reason="missing or wrong credentials",
                        detail="Asterisk must send ari.worker_username / ari.worker_password "
                        "(websocket_client.conf username / password)")  # fmt: skip
            return web.json_response({"error": "wrong credentials"}, status=401,
                                     headers={"WWW-Authenticate": 'Basic realm="ari-app worker"'})  # fmt: skip
        if self.draining or not self.ready():
            why = "draining" if self.draining else "not ready"
            log.info("worker.refused", peer=peer, reason=why)
            return web.json_response({"error": why}, status=503)
        ws = web.WebSocketResponse(protocols=(PROTOCOL,), max_msg_size=16 * 1024 * 1024)
        await ws.prepare(request)
        link = CallLink(self.settings, ws.send_str, peer)
        link.close = lambda m: ws.close(message=m)
        link.events.on_unrouted = lambda ev: self.on_event(ev, link)
        self.links.add(link)
        self.accepted += 1
        reason = "the websocket closed"
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await link.receive(msg.data)
                elif msg.type == WSMsgType.ERROR:
                    reason = f"the websocket failed: {ws.exception()}"
        finally:
            self.links.discard(link)
            link.closed(reason)
            log.info("worker.link_closed", peer=peer, app=link.app, channels=sorted(link.channel_ids))
            try:
                await self.on_closed(link)
            except Exception:
                log.exception("worker.on_closed_failed", app=link.app)
        return ws

    async def close_all(self, message: bytes = b"worker stopping") -> None:
        """Close every link's socket (shutdown after the drain timeout)."""
        for link in list(self.links):
            if link.close is not None:
                await link.close(message)
