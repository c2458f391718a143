"""Fault suite, inside a call, on the real stack: a real SIP caller talks to the running Service
while one engine is broken (TTS, ASR, the dialogue) or stalls, garbage reaches the media port, the
caller floods keys or hangs up in each phase. For each: what the caller hears (an apology and a
person, never silence), and that nothing of the call is left (Asterisk objects, RTP ports,
Redis keys without a TTL)."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import AsyncIterator
from urllib.parse import urlparse

import numpy as np
import pytest

from ari_app.config import Settings, load_settings
from ari_app.demo import caller_voice, start_demo_backend
from ari_app.media import metrics as media_metrics
from ari_app.media.rtp import RtpPacket
from ari_app.service import Service
from ari_app.testcaller.caller import Dtmf, Silence, WaitForAgent
from tests.faults.leaks import keys_expire, nothing_left_in_asterisk
from tests.stack.test_transfer import (
    ari,
    call_task,
    heard,
    phone_factory,
    ringing_call,
    say,
    transcribe,
    wait_for,
)

pytestmark = pytest.mark.stack
__all__ = ["ari", "phone_factory"]  # fixtures, imported for pytest

HOURS_Q = "What are your opening hours?"
ASK = "I need to reschedule my appointment"
LINES = [HOURS_Q, ASK]
REASON = "technical problem"


@pytest.fixture(scope="module")
async def service(real_stack) -> AsyncIterator[Service]:
    url = urlparse(os.environ.get("DEMO_BACKEND_URL", "http://127.0.0.1:8765"))
    backend = await start_demo_backend(url.port or 8765)
    svc = Service(load_settings())
    await svc.start()
    yield svc
    await svc.stop()
    await backend.cleanup()


@pytest.fixture(scope="module")
async def voices() -> dict[str, np.ndarray]:
    return await caller_voice(LINES)


@pytest.fixture
async def svc(service: Service, asterisk, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Service]:
    """The running service on a clean Asterisk; engines and settings restored after each test."""
    s = service.settings
    watchdog, timeout = s.calls.watchdog_s, s.transfer.timeout
    s.transfer.timeout = 20
    yield service
    s.calls.watchdog_s, s.transfer.timeout = watchdog, timeout
    await wait_for(lambda: not service.manager.calls, 15, "the service let go of the call")


def only_session(svc: Service) -> str:
    sids = [c.info.session_id for c in svc.manager.calls.values()]
    assert len(sids) == 1, sids
    return sids[0]


async def ended_record(svc: Service, sid: str, timeout: float = 10.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        rec = await svc.store.get(sid)
        if rec is not None and rec.status == "ended":
            return rec
        if time.monotonic() > deadline:
            raise AssertionError(f"call {sid} not ended: {rec and rec.status}")
        await asyncio.sleep(0.2)


async def assert_released(svc: Service, ari, sid: str) -> None:  # type: ignore[no-untyped-def]
    await nothing_left_in_asterisk(ari)
    await wait_for(lambda: not svc.manager.calls, 10, "the service let go of the call")
    assert not svc.manager.ports.in_use, f"RTP ports still held: {sorted(svc.manager.ports.in_use)}"
    await ended_record(svc, sid)
    await keys_expire(svc.store, sid)


async def fails_over_to_a_person(svc: Service, settings: Settings, ari, phone_factory, fault: str,
                                 spoken: str | None) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    """The caller hears an apology, then a person's phone rings with the reason; nothing leaks."""
    phone = await phone_factory(mode="answer", ring_delay_s=0.5).start()
    caller = call_task(settings, [WaitForAgent(timeout_s=20), say({}, HOURS_Q), Silence(22.0)])
    await wait_for(lambda: bool(svc.manager.calls), 10, "the service takes the call")
    sid = only_session(svc)
    agent = await ringing_call(phone, timeout=40)
    assert agent.header("X-IVA-Reason") == REASON, agent.headers
    assert agent.header("X-IVA-Session") == sid
    rec = await ended_record(svc, sid)
    assert rec.end_reason == "failed_over", rec.end_reason
    faults = [e.data for e in await svc.store.events(sid) if e.type == "fault"]
    assert faults and faults[0]["fault"] == fault, faults
    await wait_for(lambda: agent.answered_at is not None, 5, "the agent answers")
    await asyncio.sleep(1.0)
    await agent.hangup()
    report = await asyncio.wait_for(caller, 40)
    before_agent = heard(report.rtp, report.t0, agent.received_at)
    words = await transcribe(svc, before_agent)
    if spoken is not None:
        assert spoken in words, words
    else:  # Asterisk's own "I'm sorry ... one moment please"
        assert "sorry" in words or "moment" in words, words
    await assert_released(svc, ari, sid)


async def test_broken_tts_apologises_with_asterisk_sounds_and_queues(svc, settings, ari, phone_factory,
                                                                     monkeypatch) -> None:  # fmt: skip
    async def broken(text: str):  # type: ignore[no-untyped-def]
        raise RuntimeError("tts engine crashed")
        yield b""  # an async generator, like the real one

    monkeypatch.setattr(svc.deps.tts, "synthesize", broken)
    await fails_over_to_a_person(svc, settings, ari, phone_factory, "tts_failed", None)


async def test_broken_dialogue_apologises_in_our_voice_and_queues(svc, settings, ari, phone_factory,
                                                                  monkeypatch) -> None:  # fmt: skip
    async def broken(*a, **kw):  # type: ignore[no-untyped-def]
        raise RuntimeError("understanding crashed")

    monkeypatch.setattr(svc.deps.engine, "handle", broken)
    await fails_over_to_a_person(svc, settings, ari, phone_factory, "error", "something went wrong")


async def test_broken_asr_hands_the_caller_to_a_person(
    svc, settings, ari, phone_factory, monkeypatch
) -> None:
    async def broken(*a, **kw):  # type: ignore[no-untyped-def]
        raise RuntimeError("asr crashed")

    monkeypatch.setattr(svc.deps.asr, "transcribe", broken)
    phone = await phone_factory(mode="answer", ring_delay_s=0.5).start()
    caller = call_task(settings, [WaitForAgent(timeout_s=20), say({}, HOURS_Q), Silence(4.0), say({}, HOURS_Q),
                                  Silence(22.0)])  # fmt: skip
    await wait_for(lambda: bool(svc.manager.calls), 10, "the service takes the call")
    sid = only_session(svc)
    agent = await ringing_call(phone, timeout=45)
    assert agent.header("X-IVA-Session") == sid
    await agent.hangup()
    await asyncio.wait_for(caller, 40)
    rec = await ended_record(svc, sid)
    assert rec.end_reason in ("failed_over", "transferred"), rec.end_reason
    await assert_released(svc, ari, sid)


async def test_stalled_tts_is_caught_by_the_watchdog(svc, settings, ari, phone_factory, monkeypatch) -> None:
    svc.settings.calls.watchdog_s = 3.0
    real = svc.deps.tts.synthesize

    async def stalls_after_greeting(text: str):  # type: ignore[no-untyped-def]
        if "How can I help" in text:
            async for chunk in real(text):
                yield chunk
            return
        await asyncio.sleep(3600)  # a TTS that hangs: no error ever surfaces
        yield b""

    monkeypatch.setattr(svc.deps.tts, "synthesize", stalls_after_greeting)
    t0 = time.monotonic()
    await fails_over_to_a_person(svc, settings, ari, phone_factory, "speech_stalled", None)
    print(f"stalled TTS -> person's phone rang and was answered within {time.monotonic() - t0:.1f} s")


async def test_garbage_and_wrong_payload_rtp_do_not_disturb_the_call(svc, settings, ari, voices) -> None:
    malformed0 = media_metrics.RTP_MALFORMED._value.get()
    alaw = media_metrics.RTP_UNEXPECTED_PAYLOAD.labels("0", "8")
    alaw0 = alaw._value.get()
    caller = call_task(settings, [WaitForAgent(timeout_s=20), Silence(1.5), say(voices, HOURS_Q),
                                  WaitForAgent(timeout_s=15)])  # fmt: skip
    await wait_for(lambda: bool(svc.manager.calls), 10, "the service takes the call")
    sid = only_session(svc)
    call = next(iter(svc.manager.calls.values()))
    await wait_for(lambda: call.media is not None, 5, "media attached")
    port = call.media.local_port
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for i in range(200):
            s.sendto(os.urandom(7 + i % 50), ("127.0.0.1", port))  # garbage
            pkt = RtpPacket(payload_type=8, sequence=i, timestamp=160 * i, ssrc=0x1234, payload=b"\xd5" * 160)
            s.sendto(pkt.serialize(), ("127.0.0.1", port))  # alaw into our ulaw port
            await asyncio.sleep(0.005)
    report = await asyncio.wait_for(caller, 60)
    words = await transcribe(svc, heard(report.rtp, report.t0))
    assert "monday" in words or "8" in words or "eight" in words, words  # the hours were answered
    assert media_metrics.RTP_MALFORMED._value.get() > malformed0
    assert alaw._value.get() >= alaw0 + 200
    await assert_released(svc, ari, sid)


async def test_dtmf_flood_is_bounded_and_the_call_goes_on(svc, settings, ari, voices) -> None:
    caller = call_task(settings, [WaitForAgent(timeout_s=20), Dtmf("1234567890" * 6, gap_s=0.02),
                                  Silence(3.0), say(voices, HOURS_Q), WaitForAgent(timeout_s=20)])  # fmt: skip
    await wait_for(lambda: bool(svc.manager.calls), 10, "the service takes the call")
    sid = only_session(svc)
    report = await asyncio.wait_for(caller, 90)
    rec = await ended_record(svc, sid)
    caller_lines = [t for t in rec.transcript if t.speaker == "caller"]
    assert len(caller_lines) <= 6, [t.text for t in caller_lines]  # 60 keys: a few entries, not 60 turns
    assert report.heard, "the agent said nothing"
    await assert_released(svc, ari, sid)


@pytest.mark.parametrize("phase,after_s", [("greeting", 1.0), ("listening", 6.5), ("answering", None)])
async def test_caller_hangs_up_in_each_phase_nothing_leaks(
    svc, settings, ari, voices, phase, after_s
) -> None:
    if after_s is None:  # hang up while the agent answers the question
        script = [WaitForAgent(timeout_s=20), say(voices, HOURS_Q), Silence(1.6)]
    else:
        script = [Silence(after_s)]
    caller = call_task(settings, script)
    await wait_for(lambda: bool(svc.manager.calls), 10, "the service takes the call")
    sid = only_session(svc)
    await asyncio.wait_for(caller, 60)
    rec = await ended_record(svc, sid)
    assert rec.end_reason == "caller_hangup", rec.end_reason
    await assert_released(svc, ari, sid)
