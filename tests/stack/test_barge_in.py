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


def last_voiced_before_quiet(agent: np.ndarray, t: float, quiet_s: float = 0.5) -> float:
    """The agent's last voiced packet after t that is followed by quiet_s of silence."""
    prev = t
    for x in agent[agent > t]:
        if x - prev >= quiet_s:
            break
        prev = float(x)
    return prev


async def call(settings: Settings, steps: list[Step], listen_s: float) -> CallReport:
    return await place_call(settings.stack.extension, [Silence(TALK_AT_S), *steps], listen_s=listen_s,
                            sip_port=settings.stack.sip_port)  # fmt: skip


def assert_prompt_playing(agent: np.ndarray, t: float) -> None:
    assert ((agent > t - 0.3) & (agent <= t)).any(), (
        f"the agent was not talking when the caller acted {t:.2f} s in; greeting heard at {agent[:1]}"
    )


async def test_speech_over_a_prompt_stops_it(service: Service, settings: Settings) -> None:
    speech = audio.synthesize("actually I just want to know your opening hours", "flite")
    report = await call(settings, [Utterance(pcm=speech), Silence(1.0)], listen_s=0.5)
    agent = agent_voiced(report)
    start = first_voiced_sent(report, 1)
    assert_prompt_playing(agent, start)
    stop = last_voiced_before_quiet(agent, start)
    print(
        f"\nbarge-in: caller's first voiced packet -> agent's last voiced packet {(stop - start) * 1000:.0f} ms"
    )
    assert stop - start < STOP_BOUND_S
    end = report.sent[1].end
    still = agent[(agent > start + STOP_BOUND_S) & (agent < end)]
    assert still.size == 0, (
        f"the agent talked again while the caller was still speaking ({still[0] - start:.2f} s in)"
    )


async def test_cough_blip_lets_the_prompt_carry_on(service: Service, settings: Settings) -> None:
    rng = np.random.default_rng(3)
    cough = (rng.standard_normal(int(0.15 * 8000)) * 6000).astype(np.int16)  # 150 ms noise burst
    report = await call(settings, [Utterance(pcm=cough), Silence(2.5)], listen_s=0.0)
    agent = agent_voiced(report)
    start = first_voiced_sent(report, 1)
    assert_prompt_playing(agent, start)
    later = agent[agent > start + 1.0]
    gap = last_voiced_before_quiet(agent, start, quiet_s=0.05) - start
    print(f"\ncough: prompt paused at most {gap * 1000:.0f} ms after the blip; "
          f"{later.size} voiced agent packets in the 1.5 s after it")  # fmt: skip
    assert later.size >= 25, "the prompt did not carry on after a 150 ms blip"


async def test_key_press_stops_the_prompt(service: Service, settings: Settings) -> None:
    report = await call(settings, [Dtmf("5"), Silence(1.5)], listen_s=0.0)
    agent = agent_voiced(report)
    pressed = first_voiced_sent(report, 1)
    assert_prompt_playing(agent, pressed)
    stop = last_voiced_before_quiet(agent, pressed)
    print(f"\nDTMF: key sent -> agent's last voiced packet {(stop - pressed) * 1000:.0f} ms")
    assert stop - pressed < STOP_BOUND_S
    # The digit entry waits for its inter-digit timeout (2 s) before anyone answers it.
    again = agent[(agent > pressed + STOP_BOUND_S) & (agent < pressed + 1.5)]
    assert again.size == 0, "the prompt went on after the key press"
