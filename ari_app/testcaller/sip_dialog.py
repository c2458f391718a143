"""SIP over UDP for test peers: a transport that routes datagrams by Call-ID, and a Dialog that
sends in-dialog requests with retransmission and answers the requests Asterisk sends us
(BYE, re-INVITE, OPTIONS...). The UAC (``sip.py``) and the agent phone UAS build on these."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence

from ari_app.testcaller.sdp import SdpError, SdpMedia, parse_sdp
from ari_app.testcaller.sip_message import (
    SipMessage,
    SipParseError,
    new_branch,
    parse_message,
    response_to,
    tag_of,
)

log = logging.getLogger(__name__)

RETRANSMIT_S = 0.5  # T1: resend a request until the first response arrives
Addr = tuple[str, int]


class SipError(Exception):
    """A SIP exchange failed; the message says which request and what came back."""


class SipTimeout(SipError):
    pass


class CallRejected(SipError):
    def __init__(self, status: int, reason: str, what: str) -> None:
        super().__init__(f"{what} was rejected: {status} {reason}")
        self.status = status
        self.reason = reason


class SipTransport(asyncio.DatagramProtocol):
    """One UDP socket; messages go to the handler registered for their Call-ID."""

    def __init__(self) -> None:
        self._udp: asyncio.DatagramTransport | None = None
        self._handlers: dict[str, Callable[[SipMessage, Addr], None]] = {}
        self.on_new_request: Callable[[SipMessage, Addr], None] | None = None
        self.host = ""
        self.port = 0

    @classmethod
    async def open(cls, host: str = "127.0.0.1", port: int = 0) -> SipTransport:
        loop = asyncio.get_running_loop()
        try:
            _, proto = await loop.create_datagram_endpoint(cls, local_addr=(host, port))
        except OSError as e:
            raise SipError(f"cannot bind SIP socket on {host}:{port}: {e}") from None
        return proto

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._udp = transport  # type: ignore[assignment]  # always a datagram transport here
        self.host, self.port = transport.get_extra_info("sockname")[:2]

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        if not data.strip():
            return  # keep-alive CRLFs
        try:
            msg = parse_message(data)
        except SipParseError as e:
            log.warning("ignoring unreadable SIP datagram from %s: %s", addr, e)
            return
        handler = self._handlers.get(msg.call_id)
        if handler is not None:
            handler(msg, addr)
        elif (
            msg.is_request
            and msg.method == "INVITE"
            and tag_of(msg.header("To") or "") is None
            and self.on_new_request is not None
        ):
            self.on_new_request(msg, addr)
        elif msg.is_request and msg.method == "OPTIONS":
            self.send(response_to(msg, 200, "OK"), addr)
        elif msg.is_request and msg.method != "ACK":
            self.send(response_to(msg, 481, "Call/Transaction Does Not Exist"), addr)

    def register(self, call_id: str, handler: Callable[[SipMessage, Addr], None]) -> None:
        self._handlers[call_id] = handler

    def unregister(self, call_id: str) -> None:
        self._handlers.pop(call_id, None)

    def send(self, msg: SipMessage, addr: Addr) -> None:
        if self._udp is None or self._udp.is_closing():
            raise SipError("SIP transport is closed")
        self._udp.sendto(msg.to_bytes(), addr)

    def close(self) -> None:
        if self._udp is not None:
            self._udp.close()


class Dialog:
    """One call leg's SIP state. Requests always go to ``remote_addr``: a test peer only ever
    talks to the one Asterisk on loopback, so Contact hosts need no resolution."""

    def __init__(
        self,
        transport: SipTransport,
        call_id: str,
        *,
        local_uri: str,
        local_tag: str,
        remote_uri: str,
        remote_addr: Addr,
        display: str = "",
        remote_tag: str | None = None,
        remote_target: str | None = None,
        local_sdp: bytes = b"",
    ) -> None:
        self.transport = transport
        self.call_id = call_id
        self.local_uri, self.local_tag, self.display = local_uri, local_tag, display
        self.remote_uri, self.remote_tag = remote_uri, remote_tag
        self.remote_target = remote_target or remote_uri
        self.remote_addr = remote_addr
        self.local_sdp = local_sdp
        self.route_set: list[str] = []
        self.cseq = 0
        self.ended = asyncio.Event()
        self.ended_by: str | None = None  # "local", "remote" or a reason
        self.ended_at: float | None = None
        self.on_remote_sdp: Callable[[SdpMedia], None] | None = None
        self.on_request: Callable[[SipMessage], bool] | None = None  # return True if handled
        self.on_stray_response: Callable[[SipMessage], None] | None = None
        self._waiters: dict[tuple[int, str], asyncio.Queue[SipMessage]] = {}
        self._pending_ack: dict[int, asyncio.Task[None]] = {}
        transport.register(call_id, self._on_message)

    # ------------------------------------------------------------------ building requests
    @property
    def contact(self) -> str:
        user = self.local_uri.split(":", 1)[1].split("@", 1)[0]
        return f"<sip:{user}@{self.transport.host}:{self.transport.port}>"

    def new_request(
        self,
        method: str,
        *,
        uri: str | None = None,
        cseq: int | None = None,
        branch: str | None = None,
        body: bytes = b"",
        content_type: str = "application/sdp",
        extra: Sequence[tuple[str, str]] = (),
    ) -> SipMessage:
        if cseq is None:
            self.cseq += 1
            cseq = self.cseq
        to = f"<{self.remote_uri}>" + (f";tag={self.remote_tag}" if self.remote_tag else "")
        frm = (f'"{self.display}" ' if self.display else "") + f"<{self.local_uri}>;tag={self.local_tag}"
        headers = [
            (
                "Via",
                f"SIP/2.0/UDP {self.transport.host}:{self.transport.port};branch={branch or new_branch()};rport",
            ),
            *[("Route", r) for r in self.route_set],
            ("Max-Forwards", "70"),
            ("From", frm),
            ("To", to),
            ("Call-ID", self.call_id),
            ("CSeq", f"{cseq} {method}"),
            ("Contact", self.contact),
            ("User-Agent", "ari-app-testcaller"),
            *extra,
        ]
        if body:
            headers.append(("Content-Type", content_type))
        return SipMessage(f"{method} {uri or self.remote_target} SIP/2.0", headers, body)

    # ------------------------------------------------------------------ client transactions
    async def transact(
        self, request: SipMessage, timeout: float, on_provisional: Callable[[SipMessage], None] | None = None
    ) -> SipMessage:
        """Send a request, resend it every 500 ms until any response, return the final one."""
        key = request.cseq
        queue: asyncio.Queue[SipMessage] = asyncio.Queue()
        self._waiters[key] = queue
        deadline = time.monotonic() + timeout
        heard = False
        try:
            self.transport.send(request, self.remote_addr)
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    what = "response" if not heard else "final response"
                    raise SipTimeout(
                        f"{request.method} {request.request_uri}: no {what} within {timeout:g} s "
                        f"from {self.remote_addr[0]}:{self.remote_addr[1]} (is Asterisk up?)"
                    )
                try:
                    resp = await asyncio.wait_for(
                        queue.get(), remaining if heard else min(RETRANSMIT_S, remaining)
                    )
                except TimeoutError:
                    if not heard and time.monotonic() < deadline:
                        self.transport.send(request, self.remote_addr)
                    continue
                heard = True
                if resp.status < 200:
                    if on_provisional is not None:
                        on_provisional(resp)
                    continue
                return resp
        finally:
            self._waiters.pop(key, None)

    # ------------------------------------------------------------------ server side
    def respond(
        self,
        request: SipMessage,
        status: int,
        reason: str,
        *,
        body: bytes = b"",
        extra: Sequence[tuple[str, str]] = (),
    ) -> SipMessage:
        headers = [("Contact", self.contact), ("User-Agent", "ari-app-testcaller"), *extra]
        if body:
            headers.append(("Content-Type", "application/sdp"))
        resp = response_to(request, status, reason, to_tag=self.local_tag, extra=headers, body=body)
        self.transport.send(resp, self.remote_addr)
        return resp

    def respond_until_ack(self, request: SipMessage, resp: SipMessage) -> None:
        """Resend a 2xx to an INVITE until its ACK arrives (RFC 3261 §13.3.1.4), at most ~4 s."""

        async def resend() -> None:
            for _ in range(8):
                await asyncio.sleep(RETRANSMIT_S)
                self.transport.send(resp, self.remote_addr)

        num = request.cseq[0]
        old = self._pending_ack.pop(num, None)
        if old:
            old.cancel()
        self._pending_ack[num] = asyncio.get_running_loop().create_task(resend())

    def mark_ended(self, by: str) -> None:
        if not self.ended.is_set():
            self.ended_by, self.ended_at = by, time.monotonic()
            self.ended.set()

    def _on_message(self, msg: SipMessage, addr: Addr) -> None:
        if not msg.is_request:
            queue = self._waiters.get(msg.cseq)
            if queue is not None:
                queue.put_nowait(msg)
            elif self.on_stray_response is not None:
                self.on_stray_response(msg)
            return
        if self.on_request is not None and self.on_request(msg):
            return
        method = msg.method
        if method == "ACK":
            task = self._pending_ack.pop(msg.cseq[0], None)
            if task:
                task.cancel()
        elif method == "BYE":
            self.respond(msg, 200, "OK")
            self.mark_ended("remote")
        elif method == "INVITE":  # re-INVITE: keep the same media, note any new remote address
            self._remote_offer(msg)
            resp = self.respond(msg, 200, "OK", body=self.local_sdp)
            self.respond_until_ack(msg, resp)
        elif method in ("OPTIONS", "INFO", "NOTIFY", "UPDATE", "PRACK"):
            self._remote_offer(msg)
            self.respond(msg, 200, "OK", body=self.local_sdp if method == "UPDATE" and msg.body else b"")
        else:
            self.respond(msg, 405, "Method Not Allowed")

    def _remote_offer(self, msg: SipMessage) -> None:
        if not msg.body or self.on_remote_sdp is None:
            return
        try:
            self.on_remote_sdp(parse_sdp(msg.body))
        except SdpError as e:
            log.warning("ignoring unusable SDP in %s: %s", msg.method, e)

    def close(self) -> None:
        for task in self._pending_ack.values():
            task.cancel()
        self._pending_ack.clear()
        with contextlib.suppress(Exception):
            self.transport.unregister(self.call_id)
