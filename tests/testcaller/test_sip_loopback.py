"""Our UAC against our own agent phone UAS on loopback: the SIP state machine without Asterisk."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from ari_app.testcaller import audio
from ari_app.testcaller.agent_phone import AgentPhone
from ari_app.testcaller.caller import Silence, Utterance, WaitForAgent, place_call
from ari_app.testcaller.rtp_peer import RtpPeer
from ari_app.testcaller.sdp import parse_sdp
from ari_app.testcaller.sip import CallRejected, SipCall, SipError, SipTimeout, SipTransport
from ari_app.testcaller.sip_message import parse_message
from tests.testcaller.helpers import dominant_frequency, wait_until


async def test_call_to_agent_phone_carries_headers_and_audio_both_ways() -> None:
    async with AgentPhone(port=0, ring_delay_s=0.2, greeting=audio.tone(600, 1.0)) as phone:
        assert phone._transport is not None
        report_task = asyncio.create_task(
            place_call(
                "agent",
                [Utterance(pcm=audio.tone(400, 1.0))],
                listen_s=0.5,
                sip_port=phone._transport.port,
                extra_headers=[("X-IVA-Session", "sess-7")],
            )
        )
        call = await phone.next_call(5)
        report = await report_task
    assert call.header("x-iva-session") == "sess-7"
    assert call.state == "ended" and call.dialog.ended_by == "remote"
    assert call.acked_at is not None and call.answered_at is not None
    sip = report.sip
    assert sip.ringing is not None and sip.answered is not None and sip.ended_by == "local"
    assert sip.answered - sip.ringing == pytest.approx(0.2, abs=0.1)
    assert dominant_frequency(report.received_pcm()) == pytest.approx(600, abs=10)
    assert dominant_frequency(call.rtp.received_pcm()) == pytest.approx(400, abs=10)


async def test_rejecting_agent_gives_call_rejected_with_the_status() -> None:
    async with AgentPhone(port=0, mode="reject", reject_status=486) as phone:
        assert phone._transport is not None
        with pytest.raises(CallRejected, match="call to agent was rejected: 486 Busy Here") as err:
            await place_call("agent", [], listen_s=0, sip_port=phone._transport.port)
        assert err.value.status == 486
        assert phone.calls[0].state == "rejected"


async def test_agent_hangup_and_reinvite_reach_the_caller() -> None:
    async with AgentPhone(port=0) as phone:
        assert phone._transport is not None
        task = asyncio.create_task(
            place_call("agent", [Silence(5)], listen_s=0, sip_port=phone._transport.port)
        )
        call = await phone.next_call(5)
        assert await wait_until(lambda: call.acked_at is not None, 2)
        # Asterisk may re-negotiate: the caller must answer a re-INVITE with its (unchanged) SDP.
        reinvite = call.dialog.new_request("INVITE", body=call.dialog.local_sdp)
        answer = await call.dialog.transact(reinvite, 2)
        assert answer.status == 200 and parse_sdp(answer.body).port > 0
        call.dialog.transport.send(
            call.dialog.new_request("ACK", cseq=reinvite.cseq[0]), call.dialog.remote_addr
        )
        started = time.monotonic()
        await call.hangup()
        report = await task
    assert report.sip.ended_by == "remote"
    assert time.monotonic() - started < 1.0  # the caller stopped as soon as the BYE came, not after 5 s


async def test_invite_is_retransmitted_every_500ms_until_a_response_then_times_out() -> None:
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.setblocking(False)
    transport = await SipTransport.open()
    rtp = RtpPeer()
    await rtp.open()
    call = SipCall(transport, "1000", remote=sink.getsockname())
    try:
        with pytest.raises(SipTimeout, match=r"INVITE sip:1000@.*: no response within 1.2 s"):
            await call.invite("127.0.0.1", rtp.local_port, timeout=1.2)
        invites = []
        while True:
            try:
                invites.append(parse_message(sink.recv(65535)))
            except BlockingIOError:
                break
    finally:
        await rtp.close()
        transport.close()
        sink.close()
    assert len(invites) == 3  # t = 0, 0.5, 1.0
    assert {m.call_id for m in invites} == {call.call_id} and {m.header("Via") for m in invites} == {
        invites[0].header("Via")
    }
    assert call.timings.ended_by == "timeout"


async def test_wait_for_agent_returns_once_the_agent_has_spoken_and_gone_quiet() -> None:
    async with AgentPhone(port=0, greeting=audio.tone(600, 1.0)) as phone:
        assert phone._transport is not None
        report = await place_call(
            "agent", [WaitForAgent(timeout_s=5, quiet_s=0.5)], listen_s=0, sip_port=phone._transport.port
        )
    wait = report.sent[0]
    assert wait.kind == "wait" and not wait.interrupted
    greeting_end = report.heard[-1][1]
    assert wait.end - greeting_end == pytest.approx(0.5, abs=0.15)


async def test_bad_target_is_a_clear_error() -> None:
    with pytest.raises(SipError, match="'10 01' is not a dialable extension"):
        await place_call("10 01", [], listen_s=0)
