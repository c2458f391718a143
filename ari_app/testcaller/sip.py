"""A minimal SIP UAC for test calls into Asterisk: INVITE with our SDP (retransmitted every
500 ms until Asterisk answers anything), provisional responses, ACK, BYE both ways, re-INVITE.
No authentication: the ``caller`` endpoint is identified by the From user."""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

from ari_app.testcaller.sdp import SdpError, SdpMedia, build_sdp, parse_sdp
from ari_app.testcaller.sip_dialog import CallRejected, Dialog, SipError, SipTimeout, SipTransport
from ari_app.testcaller.sip_message import SipMessage, new_call_id, new_tag, tag_of, uri_of

_TARGET = re.compile(r"[A-Za-z0-9*#+_.-]{1,64}")

__all__ = ["CallRejected", "SipCall", "SipError", "SipTimeout", "SipTimings", "SipTransport"]


@dataclass
class SipTimings:
    """time.monotonic() stamps of the call's SIP events (None = did not happen)."""

    invite_sent: float | None = None
    first_response: float | None = None  # usually 100 Trying
    ringing: float | None = None  # 180 or 183
    answered: float | None = None  # 200 OK to the INVITE
    bye_sent: float | None = None
    ended: float | None = None
    ended_by: str | None = None  # "local" (our BYE), "remote" (Asterisk's BYE) or "rejected"
    final_status: int | None = None


class SipCall:
    """One outgoing call. ``await invite(...)``; then ``await bye()`` or wait for ``ended``."""

    def __init__(
        self,
        transport: SipTransport,
        target: str,
        *,
        remote: tuple[str, int] = ("127.0.0.1", 5060),
        from_user: str = "caller",
        display: str = "ari-app test caller",
        extra_headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        if not _TARGET.fullmatch(target):
            raise SipError(
                f"call target {target!r} is not a dialable extension (letters, digits, * # + _ . - only)"
            )
        self.target = target
        self.request_uri = f"sip:{target}@{remote[0]}:{remote[1]}"
        self.extra_headers = list(extra_headers)
        self.timings = SipTimings()
        self.dialog = Dialog(
            transport,
            new_call_id(transport.host),
            local_uri=f"sip:{from_user}@{transport.host}",
            local_tag=new_tag(),
            remote_uri=self.request_uri,
            remote_addr=remote,
            display=display,
        )
        self.dialog.on_stray_response = self._on_stray_response
        self._ack: SipMessage | None = None
        self.remote_media: SdpMedia | None = None
        self.answer: SipMessage | None = None

    @property
    def call_id(self) -> str:
        return self.dialog.call_id

    @property
    def ended(self) -> asyncio.Event:  # set when either side hung up
        return self.dialog.ended

    async def invite(self, rtp_host: str, rtp_port: int, timeout: float = 15.0) -> SdpMedia:
        """Place the call; returns Asterisk's media address. Raises CallRejected / SipTimeout."""
        self.dialog.local_sdp = build_sdp(rtp_host, rtp_port, random.randrange(1, 2**31))
        request = self.dialog.new_request(
            "INVITE", uri=self.request_uri, body=self.dialog.local_sdp, extra=self.extra_headers
        )
        self.timings.invite_sent = time.monotonic()
        what = f"call to {self.target}"
        try:
            resp = await self.dialog.transact(request, timeout, on_provisional=self._on_provisional)
        except SipTimeout:
            self._end("timeout")
            raise
        self._note_response()
        self.timings.final_status = resp.status
        if resp.status >= 300:
            self._ack_failure(request, resp)
            self._end("rejected")
            raise CallRejected(resp.status, resp.reason, what)
        self.timings.answered = time.monotonic()
        self.answer = resp
        d = self.dialog
        d.remote_tag = tag_of(resp.header("To") or "")
        contact = resp.header("Contact")
        d.remote_target = uri_of(contact) if contact else self.request_uri
        d.route_set = list(reversed(resp.header_all("Record-Route")))
        self._ack = d.new_request("ACK", cseq=request.cseq[0])
        d.transport.send(self._ack, d.remote_addr)
        try:
            self.remote_media = parse_sdp(resp.body)
        except SdpError as e:
            await self.bye()
            raise SipError(f"{what} was answered without usable audio: {e}") from None
        return self.remote_media

    async def bye(self, timeout: float = 4.0) -> None:
        """Hang up (no-op if the call already ended). Never raises for a call Asterisk already dropped."""
        if self.dialog.ended.is_set() or self.timings.answered is None:
            self.close()
            return
        self.timings.bye_sent = time.monotonic()
        request = self.dialog.new_request("BYE")
        try:
            resp = await self.dialog.transact(request, timeout)
        except SipTimeout:
            self._end("local (BYE unanswered)")
            raise
        finally:
            self.close()
        self._end("local" if resp.status < 300 else f"local (BYE got {resp.status})")

    def close(self) -> None:
        self.dialog.close()

    # ------------------------------------------------------------------ internals
    def _note_response(self) -> None:
        if self.timings.first_response is None:
            self.timings.first_response = time.monotonic()

    def _on_provisional(self, resp: SipMessage) -> None:
        self._note_response()
        if resp.status in (180, 183) and self.timings.ringing is None:
            self.timings.ringing = time.monotonic()

    def _ack_failure(self, invite: SipMessage, resp: SipMessage) -> None:
        # A non-2xx ACK belongs to the INVITE transaction: same branch and Request-URI, To with tag.
        via = invite.header("Via") or ""
        headers = [
            ("Via", via),
            ("Max-Forwards", "70"),
            ("From", invite.header("From") or ""),
            ("To", resp.header("To") or ""),
            ("Call-ID", self.call_id),
            ("CSeq", f"{invite.cseq[0]} ACK"),
        ]
        with contextlib.suppress(SipError):
            self.dialog.transport.send(
                SipMessage(f"ACK {invite.request_uri} SIP/2.0", headers), self.dialog.remote_addr
            )

    def _on_stray_response(self, resp: SipMessage) -> None:
        # Asterisk resends its 200 OK until our ACK arrives: answer each copy with the ACK again.
        if resp.method == "INVITE" and 200 <= resp.status < 300 and self._ack is not None:
            with contextlib.suppress(SipError):
                self.dialog.transport.send(self._ack, self.dialog.remote_addr)

    def _end(self, by: str) -> None:
        self.dialog.mark_ended(by)
        self.timings.ended = self.dialog.ended_at
        self.timings.ended_by = self.dialog.ended_by

    def sync_end(self) -> None:
        """Copy an end seen by the dialog (Asterisk's BYE) into the timings."""
        if self.dialog.ended.is_set():
            self.timings.ended = self.dialog.ended_at
            self.timings.ended_by = self.dialog.ended_by
