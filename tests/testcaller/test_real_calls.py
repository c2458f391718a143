"""Real SIP calls from our UAC / agent phone into the embedded Asterisk (dev-inbound 1001 Echo,
1002 Playback(demo-congrats), unknown numbers, hangups both ways, DTMF, concurrency)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from ari_app.config import Settings
from ari_app.testcaller import audio
from ari_app.testcaller.agent_phone import AgentPhone
from ari_app.testcaller.caller import Dtmf, Silence, Utterance, place_call
from ari_app.testcaller.rtp_peer import RtpPeer
from ari_app.testcaller.sip import CallRejected, SipCall, SipTransport
from tests.testcaller.helpers import ari_client, best_lag, dominant_frequency, wait_until

pytestmark = pytest.mark.stack


async def test_echo_returns_our_own_speech(asterisk, settings: Settings) -> None:
    speech = audio.synthesize("I need to reschedule my appointment")
    report = await place_call("1001", [Utterance(pcm=speech)], listen_s=0.5)
    heard = report.received_pcm()
    lag, corr = best_lag(speech, heard)
    sent_start = report.sent[0].start
    echo_delay = report.rtp.first_voiced_after(sent_start) - sent_start
    assert corr > 0.95, f"echo does not match what we said (normalised correlation {corr:.3f})"
    assert 0 <= echo_delay < 0.3, f"echo came back after {echo_delay * 1000:.0f} ms"
    assert audio.dbfs(heard[lag : lag + speech.size]) == pytest.approx(audio.dbfs(speech), abs=1.0)
    assert report.sip.ended_by == "local" and report.sip.final_status == 200
    assert report.responses()[0].latency_s is not None


async def test_playback_extension_plays_a_prompt(asterisk) -> None:
    report = await place_call("1002", [], listen_s=4.0)
    voiced = sum(b - a for a, b in report.heard)
    assert voiced > 2.5, f"only {voiced:.2f} s of voiced audio from Playback(demo-congrats)"
    assert report.heard[0][0] - report.sip.answered < 1.0


async def test_unknown_extension_is_a_clear_404(asterisk) -> None:
    with pytest.raises(CallRejected, match="call to 9999 was rejected: 404 Not Found") as err:
        await place_call("9999", [], listen_s=0)
    assert err.value.status == 404


async def test_our_bye_ends_the_call_and_asterisk_drops_the_channel(asterisk, settings: Settings) -> None:
    # Other suites may share this Asterisk: only look at the channel carrying our SIP Call-ID.
    async with ari_client(settings) as ari:
        transport = await SipTransport.open()
        rtp = RtpPeer()
        await rtp.open()
        call = SipCall(transport, "1001")
        try:
            await call.invite("127.0.0.1", rtp.local_port)
            channel = await ari.sip_channel(call.call_id)
            assert channel is not None and channel["name"].startswith("PJSIP/caller-")
            assert channel["state"] == "Up"
            await call.bye()
        finally:
            await rtp.close()
            transport.close()
        assert call.timings.ended_by == "local"
        assert await wait_until(lambda: ari.channel_gone(channel["id"]), 2), (
            "Asterisk kept the channel after BYE"
        )


async def test_asterisk_hangup_reaches_the_caller(asterisk, settings: Settings) -> None:
    async with ari_client(settings) as ari:
        transport = await SipTransport.open()
        rtp = RtpPeer()
        await rtp.open()
        call = SipCall(transport, "1001")
        try:
            await call.invite("127.0.0.1", rtp.local_port)
            channel = await ari.sip_channel(call.call_id)
            assert channel is not None
            status, _ = await ari.request("DELETE", f"/channels/{channel['id']}")
            assert status == 204
            await asyncio.wait_for(call.ended.wait(), 3)
            call.sync_end()
        finally:
            await rtp.close()
            transport.close()
    assert call.timings.ended_by == "remote" and call.timings.bye_sent is None


async def test_dtmf_into_echo_keeps_the_call_up(asterisk) -> None:
    report = await place_call("1001", [Dtmf("123*"), Utterance(pcm=audio.tone(700, 0.5))], listen_s=0.3)
    assert report.sip.ended_by == "local"
    events = [p for p in report.rtp.sent if p.payload_type == 101]
    assert len(events) == 4 * 11
    echoed = [p.dtmf.digit for p in report.rtp.received if p.dtmf is not None and p.dtmf.end]
    assert "".join(dict.fromkeys(echoed)) == "123*", f"Echo() sent back DTMF {echoed}"
    # The tone after the digits still comes back: the call survived the events.
    assert dominant_frequency(report.received_pcm()[-4000:]) == pytest.approx(700, abs=15)


async def test_hash_dtmf_ends_echo_so_asterisk_decoded_our_rfc4733(asterisk) -> None:
    # Echo() hangs up when it receives '#': proof that Asterisk understood our telephone-events.
    report = await place_call("1001", [Dtmf("#"), Silence(3.0)], listen_s=0)
    assert report.sip.ended_by == "remote"
    assert report.sent[0].kind == "dtmf" and report.sent[0].interrupted
    assert report.sip.ended - report.sent[0].start < 1.0


async def test_concurrent_calls_are_independent(asterisk) -> None:
    freqs = (400, 700, 1000)
    reports = await asyncio.gather(
        *(place_call("1001", [Utterance(pcm=audio.tone(f, 1.0))], listen_s=0.3) for f in freqs)
    )
    assert len({r.call_id for r in reports}) == 3
    assert len({r.rtp.local_port for r in reports}) == 3
    for f, r in zip(freqs, reports, strict=True):
        assert dominant_frequency(r.received_pcm()) == pytest.approx(f, abs=15)


async def test_agent_phone_answers_asterisk_with_headers_and_hears_itself(
    asterisk, settings: Settings
) -> None:
    async with AgentPhone(
        port=settings.stack.agent_port, ring_delay_s=0.2, greeting=audio.tone(600, 1.0)
    ) as phone:
        async with ari_client(settings) as ari:
            agent_channel = await ari.originate_to_agent(headers={"X-IVA-Session": "sess-42"})
            call = await phone.next_call(5)
            assert call.header("X-IVA-Session") == "sess-42"
            assert await wait_until(lambda: call.rtp.voiced_spans(), 3)
            await asyncio.sleep(1.2)
            await call.hangup()
            assert await wait_until(lambda: ari.channel_gone(agent_channel["id"]), 2)
    voiced = np.concatenate([p.pcm for p in call.rtp.received if p.pcm is not None and p.dbfs > -40])
    assert voiced.size >= 0.8 * 8000
    assert dominant_frequency(voiced) == pytest.approx(600, abs=15)


@pytest.mark.parametrize(("mode", "state"), [("reject", "rejected"), ("no-answer", "cancelled")])
async def test_agent_phone_reject_and_no_answer(asterisk, settings: Settings, mode: str, state: str) -> None:
    async with AgentPhone(port=settings.stack.agent_port, mode=mode) as phone:  # type: ignore[arg-type]
        async with ari_client(settings) as ari:
            agent_channel = await ari.originate_to_agent(timeout_s=2)
            call = await phone.next_call(5)
            await asyncio.wait_for(call.ended.wait(), 5)
            assert call.state == state
            assert await wait_until(lambda: ari.channel_gone(agent_channel["id"]), 2)
