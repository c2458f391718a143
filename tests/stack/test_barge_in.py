"""Barge-in on a real call into a real Service, judged from the caller's wire: talking over a long
prompt stops it, a 150 ms cough-like blip does not (the prompt carries on), a key press stops it.

The bounds are functional (< 600 ms to go quiet); the measured values are printed, and the speed
target lives in benchmarks/turn_latency.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from ari_app.config import Settings
from ari_app.service import Service
from ari_app.testcaller import audio
from ari_app.testcaller.caller import VOICED_DBFS, CallReport, Dtmf, Silence, Step, Utterance, place_call

pytestmark = pytest.mark.stack

LONG_GREETING = (
    "Thanks for calling the Harbor Street clinic. Our opening hours are Monday to Friday, eight in "
    "the morning to six in the evening, and Saturday morning from nine to twelve. We are on the "
    "second floor, and parking is behind the building. How can I help you today?"
)
FLOW = f"""
greeting: "{LONG_GREETING}"
flows:
  faq_opening_hours:
    description: Opening hours
    examples: [what are your opening hours, when are you open, what time do you open]
    steps:
      - end: "We open at eight."
"""
TALK_AT_S = 2.0  # the caller acts this long after the answer, well inside the ~15 s greeting
STOP_BOUND_S = 0.6


@pytest.fixture(scope="module")
def flow_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("barge") / "greeting.yaml"
    path.write_text(FLOW)
    return path


@pytest.fixture
async def service(asterisk, settings: Settings, flow_file: Path) -> AsyncIterator[Service]:
    svc = Service(settings, [flow_file], with_store=False)
    await svc.start()
    yield svc
    await svc.stop()


def agent_voiced(report: CallReport) -> np.ndarray:
    return np.array([p.arrival for p in report.rtp.received if p.pcm is not None and p.dbfs >= VOICED_DBFS])


def first_voiced_sent(report: CallReport, index: int) -> float:
    """Send time of the first voiced packet of the index-th step (speech or DTMF)."""
    item = report.sent[index]
    assert not item.interrupted, f"the call ended during step {index} ({item.label})"
    if item.kind == "dtmf":
        return item.start
    times = [p.sent_at for p in report.rtp.sent
             if item.start <= p.sent_at <= item.end and p.payload_type == 0 and p.dbfs >= VOICED_DBFS]  # fmt: skip
    assert times, f"step {index} ({item.label}) sent no voiced audio"
    return times[0]


def agent_packets(report: CallReport) -> np.ndarray:
    return np.array([p.arrival for p in report.rtp.received if p.pcm is not None])


def stream_stop(report: CallReport, t: float, gap_s: float = 0.1, horizon_s: float = 2.0) -> float | None:
    """When the agent's packet stream stopped after t (a prompt's pauses are sent as silence; once
    stopped nothing is sent): the last arrival before a gap_s gap. None: it ran on for horizon_s."""
    times = agent_packets(report)
    prev = t
    for x in times[times > t]:
        if x - prev >= gap_s:
            return prev
        if x - t > horizon_s:
            return None
        prev = float(x)
    return prev


def speech_blip(ms: int = 150) -> np.ndarray:
    """A 150 ms burst cut from the loudest part of a spoken "hey" (white noise alone does not
    even fool the VAD, so it would not exercise the pause-and-resume path), with 10 ms fades."""
    pcm = audio.synthesize("hey", "flite").astype(np.float64)
    n = ms * 8
    energy = np.convolve(pcm**2, np.ones(n), mode="valid")
    i = int(np.argmax(energy))
    burst = pcm[i : i + n]
    ramp = np.linspace(0, 1, 80)
    burst[:80] *= ramp
    burst[-80:] *= ramp[::-1]
    return burst.astype(np.int16)


async def call(settings: Settings, steps: list[Step], listen_s: float) -> CallReport:
    return await place_call(settings.stack.extension, [Silence(TALK_AT_S), *steps], listen_s=listen_s,
                            sip_port=settings.stack.sip_port)  # fmt: skip


def assert_prompt_playing(report: CallReport, t: float) -> None:
    stream = agent_packets(report)
    assert ((stream > t - 0.1) & (stream <= t)).any(), (
        "the agent was not playing the greeting when the caller acted"
    )


async def test_speech_over_a_prompt_stops_it(service: Service, settings: Settings) -> None:
    speech = audio.synthesize("actually I just want to know your opening hours", "flite")
    report = await call(settings, [Utterance(pcm=speech), Silence(1.0)], listen_s=0.5)
    agent = agent_voiced(report)
    start = first_voiced_sent(report, 1)
    # The prompt may pause on the utterance's faint onset, before its first loud packet: look from
    # when the caller's utterance began.
    began = report.sent[1].start
    assert_prompt_playing(report, began)
    stop = stream_stop(report, began)
    assert stop is not None, "the agent's prompt ran on for 2 s while the caller talked over it"
    print(
        f"\nbarge-in: caller's first voiced packet -> agent's audio stream stops {(stop - start) * 1000:.0f} ms"
    )
    assert stop - start < STOP_BOUND_S
    end = report.sent[1].end
    still = agent[(agent > start + STOP_BOUND_S) & (agent < end)]
    assert still.size == 0, (
        f"the agent talked again while the caller was still speaking ({still[0] - start:.2f} s in)"
    )


async def test_cough_blip_lets_the_prompt_carry_on(service: Service, settings: Settings) -> None:
    cough = speech_blip()
    report = await call(settings, [Utterance(pcm=cough), Silence(2.5)], listen_s=0.0)
    agent = agent_voiced(report)
    start = first_voiced_sent(report, 1)
    assert_prompt_playing(report, start)
    later = agent[agent > start + 1.0]
    stream = agent_packets(report)
    after = stream[stream > start]
    gaps = np.diff(np.concatenate([[start], after]))
    print(f"\ncough: longest pause in the agent's stream after the blip {gaps.max() * 1000:.0f} ms; "
          f"{later.size} voiced agent packets from 1 s after it")  # fmt: skip
    assert later.size >= 25, "the prompt did not carry on after a 150 ms blip"


async def test_key_press_stops_the_prompt(service: Service, settings: Settings) -> None:
    report = await call(settings, [Dtmf("5"), Silence(1.5)], listen_s=0.0)
    agent = agent_voiced(report)
    pressed = first_voiced_sent(report, 1)
    assert_prompt_playing(report, pressed)
    stop = stream_stop(report, pressed)
    assert stop is not None, "the agent's prompt ran on for 2 s after the key press"
    print(f"\nDTMF: key sent -> agent's audio stream stops {(stop - pressed) * 1000:.0f} ms")
    assert stop - pressed < STOP_BOUND_S
    # The digit entry waits for its inter-digit timeout (2 s) before anyone answers it.
    again = agent[(agent > pressed + STOP_BOUND_S) & (agent < pressed + 1.5)]
    assert again.size == 0, "the prompt went on after the key press"
