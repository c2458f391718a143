"""A minimal SIP UAS standing in for the human agent's phone (endpoint ``agent``, queue
``support``): it rings, then answers / never answers / rejects; exposes the INVITE's headers
(e.g. ``X-IVA-Session``), plays audio to the caller and records what it hears. With ``plans``
it is the callees of an outbound campaign (endpoint ``callee``): each dialled number rings,
answers with its own greeting (a person's "Hello?", a voicemail greeting and beep), is busy,
or never answers."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from ari_app.testcaller.rtp_peer import RtpPeer, SentSpan
from ari_app.testcaller.sdp import SdpError, build_sdp, parse_sdp
from ari_app.testcaller.sip_dialog import Addr, Dialog, SipError, SipTimeout, SipTransport
from ari_app.testcaller.sip_message import SipMessage, new_tag, response_to, tag_of, uri_of

AnswerMode = Literal["answer", "no-answer", "reject"]


@dataclass(frozen=True)
class CalleePlan:
    """How the phone treats an INVITE to one number (the Request-URI's user part)."""

    mode: AnswerMode = "answer"
    ring_delay_s: float = 0.5
    greeting: np.ndarray | None = None  # played as soon as the call is answered
    reject_status: int = 486
    reject_reason: str = "Busy Here"


@dataclass
class AgentCall:
    """One INVITE the agent phone received."""

    invite: SipMessage
    dialog: Dialog
    rtp: RtpPeer
    received_at: float
    answered_at: float | None = None
    acked_at: float | None = None
    state: str = "ringing"  # ringing | answered | rejected | cancelled | ended
    _last_response: SipMessage | None = field(default=None, repr=False)

    @property
    def number(self) -> str:
        """The dialled number: the user part of the INVITE's Request-URI."""
        uri = self.invite.request_uri
        return uri.split(":", 1)[-1].split("@", 1)[0].split(";", 1)[0]

    def header(self, name: str) -> str | None:
        """A header of the INVITE, case-insensitively (e.g. ``X-IVA-Session``)."""
        return self.invite.header(name)

    @property
    def headers(self) -> dict[str, str]:
        return self.invite.headers_dict()

    @property
    def ended(self) -> asyncio.Event:
        return self.dialog.ended

    async def play(self, pcm: np.ndarray, label: str = "agent") -> SentSpan:
        return await self.rtp.play(pcm, label)

    async def hangup(self, timeout: float = 4.0) -> None:
        """The agent hangs up (BYE). No-op if the call is already over or was never answered."""
        if self.dialog.ended.is_set() or self.answered_at is None:
            return
        with contextlib.suppress(SipTimeout):
            await self.dialog.transact(self.dialog.new_request("BYE"), timeout)
        self.dialog.mark_ended("local")
        self.state = "ended"


class AgentPhone:
    """``async with AgentPhone(mode="answer", ring_delay_s=0.5) as phone: call = await phone.next_call()``"""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 5080,
        *,
        mode: AnswerMode = "answer",
        ring_delay_s: float = 0.0,
        reject_status: int = 486,
        reject_reason: str = "Busy Here",
        greeting: np.ndarray | None = None,
        send_silence: bool = True,
        plans: dict[str, CalleePlan] | None = None,
    ) -> None:
        if mode not in ("answer", "no-answer", "reject"):
            raise ValueError(f"AgentPhone mode {mode!r} is not one of answer, no-answer, reject")
        self.host, self.port, self.mode = host, port, mode
        self.ring_delay_s = ring_delay_s
        self.reject_status, self.reject_reason = reject_status, reject_reason
        self.greeting = greeting
        self.send_silence = send_silence
        self.plans = plans or {}
        self._handed: set[int] = set()  # calls next_call_to returned
        self.calls: list[AgentCall] = []
        self._incoming: asyncio.Queue[AgentCall] = asyncio.Queue()
        self._transport: SipTransport | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> AgentPhone:
        try:
            self._transport = await SipTransport.open(self.host, self.port)
        except SipError as e:
            raise SipError(f"agent phone: {e} (another agent phone or test may be using it)") from None
        self._transport.on_new_request = self._on_invite
        return self

    async def stop(self) -> None:
        for call in self.calls:
            with contextlib.suppress(SipError):
                await call.hangup(timeout=2.0)
            await call.rtp.close()
            call.dialog.close()
        for task in self._tasks:
            task.cancel()
        if self._transport is not None:
            self._transport.close()

    async def __aenter__(self) -> AgentPhone:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def next_call(self, timeout: float = 10.0) -> AgentCall:
        try:
            return await asyncio.wait_for(self._incoming.get(), timeout)
        except TimeoutError:
            raise SipTimeout(
                f"agent phone {self.host}:{self.port} got no INVITE within {timeout:g} s"
            ) from None

    async def next_call_to(self, number: str, timeout: float = 10.0) -> AgentCall:
        """The first call to ``number`` not handed out yet (a campaign rings several at once)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for call in self.calls:
                if call.number == number and id(call) not in self._handed:
                    self._handed.add(id(call))
                    return call
            await asyncio.sleep(0.05)
        raise SipTimeout(f"phone {self.host}:{self.port} got no INVITE for {number} within {timeout:g} s")

    # ------------------------------------------------------------------ incoming calls
    def _on_invite(self, invite: SipMessage, addr: Addr) -> None:
        task = asyncio.get_running_loop().create_task(self._handle_invite(invite, addr))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle_invite(self, invite: SipMessage, addr: Addr) -> None:
        assert self._transport is not None
        frm = invite.header("From") or ""
        contact = invite.header("Contact")
        dialog = Dialog(
            self._transport,
            invite.call_id,
            local_uri=uri_of(invite.header("To") or ""),
            local_tag=new_tag(),
            remote_uri=uri_of(frm),
            remote_addr=addr,
            remote_tag=tag_of(frm),
            remote_target=uri_of(contact) if contact else None,
        )
        dialog.route_set = invite.header_all("Record-Route")
        rtp = RtpPeer(self.host, send_silence=self.send_silence)
        call = AgentCall(invite, dialog, rtp, time.monotonic())
        dialog.on_request = lambda msg: self._in_dialog(call, msg)
        dialog.on_remote_sdp = lambda m: rtp.set_remote(m.ip, m.port)
        self.calls.append(call)
        self._incoming.put_nowait(call)
        self._transport.send(response_to(invite, 100, "Trying"), addr)
        call._last_response = dialog.respond(invite, 180, "Ringing")
        plan = self.plans.get(call.number) or CalleePlan(
            self.mode, self.ring_delay_s, self.greeting, self.reject_status, self.reject_reason
        )
        if plan.mode == "no-answer":
            return  # ring until Asterisk CANCELs
        await asyncio.sleep(plan.ring_delay_s)
        if dialog.ended.is_set():
            return  # cancelled while ringing
        if plan.mode == "reject":
            call.state = "rejected"
            call._last_response = dialog.respond(invite, plan.reject_status, plan.reject_reason)
            dialog.mark_ended("rejected")
            return
        try:
            offer = parse_sdp(invite.body)
        except SdpError as e:
            call.state = "rejected"
            call._last_response = dialog.respond(invite, 488, "Not Acceptable Here")
            dialog.mark_ended(f"bad offer: {e}")
            return
        await rtp.open()
        rtp.set_remote(offer.ip, offer.port)
        dialog.local_sdp = build_sdp(self.host, rtp.local_port, random.randrange(1, 2**31), user="agent")
        call.answered_at = time.monotonic()
        call.state = "answered"
        call._last_response = dialog.respond(invite, 200, "OK", body=dialog.local_sdp)
        dialog.respond_until_ack(invite, call._last_response)
        rtp.start()
        if plan.greeting is not None:
            await rtp.play(plan.greeting, "greeting")

    def _in_dialog(self, call: AgentCall, msg: SipMessage) -> bool:
        """Requests the generic dialog must not handle on its own; True if handled here."""
        if msg.method == "CANCEL":
            call.dialog.respond(msg, 200, "OK")
            if call.answered_at is None and not call.dialog.ended.is_set():
                call.state = "cancelled"
                call._last_response = call.dialog.respond(call.invite, 487, "Request Terminated")
                call.dialog.mark_ended("cancelled")
            return True
        if msg.method == "INVITE" and msg.cseq == call.invite.cseq:  # a retransmitted initial INVITE
            if call._last_response is not None:
                call.dialog.transport.send(call._last_response, call.dialog.remote_addr)
            return True
        if msg.method == "ACK" and call.answered_at is not None and call.acked_at is None:
            call.acked_at = time.monotonic()
        if msg.method == "BYE":
            call.state = "ended"
        return False
