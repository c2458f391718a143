"""The call path against the real Asterisk with a real SIP caller speaking real RTP:
caller audio reaches us, our audio reaches the caller, DTMF arrives in order, a hang-up
mid-prompt releases everything within a second, and ten calls (with the events websocket
killed mid-call) run independently."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import numpy as np
import pytest

from ari_app.calls.call import Call
from ari_app.calls.manager import CallManager
from ari_app.config import Settings, load_settings
from ari_app.testcaller import audio
from ari_app.testcaller.caller import Dtmf, Silence, Utterance, place_call

pytestmark = pytest.mark.stack
SETTINGS = load_settings()  # ports of the stack under test (env overrides apply)


def tone(freq: float, seconds: float) -> bytes:
    t = np.arange(int(8000 * seconds)) / 8000
    return (np.sin(2 * np.pi * freq * t) * 10000).astype("<i2").tobytes()


def goertzel_ratio(pcm: np.ndarray, freq: float) -> float:
    """Share of the signal's energy at ``freq`` (1.0 = pure tone)."""
    x = pcm.astype(np.float64)
    if not x.any():
        return 0.0
    spec = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / 8000)
    band = (freqs > freq - 30) & (freqs < freq + 30)
    return float(spec[band].sum() / spec.sum())


@pytest.fixture
async def manager_factory(
    asterisk, settings: Settings
) -> AsyncIterator[Callable[..., Awaitable[CallManager]]]:
    made: list[CallManager] = []

    async def make(conversation) -> CallManager:
        m = CallManager(settings, conversation)
        await m.start()
        made.append(m)
        return m

    yield make
    for m in made:
        await m.stop()
        assert not m.ports.in_use, f"RTP ports leaked: {sorted(m.ports.in_use)}"


async def wait_until(pred: Callable[[], bool], timeout: float) -> float:
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)
    return time.monotonic() - t0


async def test_caller_speech_reaches_the_app(manager_factory) -> None:
    heard: list[bytes] = []

    async def record(call: Call) -> None:
        async for frame in call.media.frames():
            heard.append(frame.pcm)

    await manager_factory(record)
    speech = audio.synthesize("I would like to reschedule my appointment for next Tuesday please")
    await place_call(
        SETTINGS.stack.extension,
        [Silence(0.3), Utterance(pcm=speech)],
        listen_s=0.5,
        sip_port=SETTINGS.stack.sip_port,
    )
    got = np.frombuffer(b"".join(heard), dtype="<i2")
    sent_voiced = int((np.abs(speech) > 500).sum())
    got_voiced = int((np.abs(got) > 500).sum())
    assert len(got) >= len(speech) * 0.9, (len(got), len(speech))
    assert got_voiced >= sent_voiced * 0.8, (got_voiced, sent_voiced)
    assert audio.dbfs(got) > -40


async def test_our_audio_reaches_the_caller(manager_factory) -> None:
    results = []

    async def speak(call: Call) -> None:
        results.append(await call.media.play(tone(1000, 1.0)))
        await asyncio.sleep(5)

    await manager_factory(speak)
    report = await place_call(SETTINGS.stack.extension, [], listen_s=2.0, sip_port=SETTINGS.stack.sip_port)
    pcm = report.received_pcm()
    loud = pcm[np.abs(pcm) > 2000]
    assert len(loud) > 8000 * 0.6, "less than 0.6 s of our 1 s tone reached the caller"
    assert goertzel_ratio(pcm, 1000) > 0.8
    assert results[0].frames_sent == 50 and not results[0].stopped


async def test_dtmf_reaches_the_conversation_in_order(manager_factory) -> None:
    got: list[str] = []

    async def collect(call: Call) -> None:
        while (d := await call.next_digit(timeout=10)) is not None:
            got.append(d.digit)

    await manager_factory(collect)
    await place_call(
        SETTINGS.stack.extension,
        [Silence(0.5), Dtmf("1234*#", gap_s=0.15)],
        listen_s=0.5,
        sip_port=SETTINGS.stack.sip_port,
    )
    assert "".join(got) == "1234*#"


async def test_hangup_mid_prompt_releases_everything_within_a_second(manager_factory, settings) -> None:
    async def long_prompt(call: Call) -> None:
        await call.media.play(tone(440, 20))

    m = await manager_factory(long_prompt)
    report = await place_call(
        SETTINGS.stack.extension, [], listen_s=1.0, sip_port=SETTINGS.stack.sip_port
    )  # hangs up while the prompt plays
    assert report.sip.ended_by == "local"  # we (the caller) hung up
    waited = await wait_until(lambda: not m.calls, 1.0)
    left_channels = [c for c in await m.ari.list_channels() if c.id.startswith("iva-") or c.caller.number]
    left_bridges = [b for b in await m.ari.list_bridges() if b.id.startswith("iva-")]
    assert not left_channels and not left_bridges, (left_channels, left_bridges)
    assert not m.ports.in_use
    assert waited < 1.0
    assert m.finished[-1].end_reason == "caller_hangup"


async def test_ten_calls_are_independent_and_survive_a_websocket_drop(manager_factory) -> None:
    digits: dict[str, str] = {}

    async def per_call(call: Call) -> None:
        await call.media.play(tone(800, 0.3))
        d = await call.next_digit(timeout=15)
        digits[call.info.session_id] = d.digit if d else ""
        await call.media.play(tone(1200, 0.3))
        await asyncio.sleep(10)

    m = await manager_factory(per_call)

    async def one(i: int):
        return await place_call(
            SETTINGS.stack.extension,
            [Silence(1.5), Dtmf(str(i))],
            listen_s=1.5,
            sip_port=SETTINGS.stack.sip_port,
        )

    calls = asyncio.gather(*(one(i) for i in range(10)))
    await wait_until(
        lambda: len(m.calls) == 10 and all(c.media and c.media.playing for c in m.calls.values()), 10
    )
    await m.events.drop_connection()  # the events websocket dies mid-call
    reports = await calls
    assert m.events.reconnects >= 1
    assert sorted(digits.values()) == [str(i) for i in range(10)]
    for r in reports:
        pcm = r.received_pcm()
        assert goertzel_ratio(pcm, 1200) > 0.2, "a call did not get its audio after the reconnect"
    await wait_until(lambda: not m.calls, 2)
