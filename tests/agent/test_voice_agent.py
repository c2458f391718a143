"""agent: turn-taking, barge-in, false-barge-in resume, no-input escalation, a transfer request
and a hang-up mid-prompt, on a real VoiceAgent + DialogEngine (shipped flows) with one fake per
stage (tests/agent/fakes.py). Virtual time: a whole call runs in milliseconds, no Asterisk.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ari_app.agent.voice import NO_ANSWER_PROMPT, AgentDeps, VoiceAgent
from ari_app.config import Settings
from ari_app.dialog.engine import DialogEngine
from ari_app.dialog.loader import load_flows
from ari_app.dialog.nlu import build_understanding
from ari_app.dialog.nlu.settings import NluSettings
from ari_app.dialog.tools import ToolClient
from ari_app.speech.expectation import Expectation
from ari_app.transfer.warm import TransferRequest, TransferResult
from tests.agent.fakes import FakeAsr, FakeCall, FakeLine, FakeTts, ScriptedVad

ROOT = Path(__file__).resolve().parents[2]
GREETING = "Thanks for calling Acme Health and Home. How can I help you today?"
HOURS = "We're open Monday to Friday, 8 AM to 6 PM."
TEXTS = {1: "What are your opening hours?", 2: "Let me talk to a person please.", 3: "Where are you located?",
         4: "I need to reschedule my appointment.", 5: "5 5 5", 6: "1 2 3", 7: "4 5 6 7."}  # fmt: skip
PHONE_PROMPT = (
    "Sure, I can help you reschedule. What's the phone number on your account? You can say it or key it in."
)


@pytest.fixture(scope="module")
def engine() -> DialogEngine:
    nlu = build_understanding(NluSettings(classifier="tfidf"))  # no model files: milliseconds
    return DialogEngine(load_flows([ROOT / "flows"]), nlu, ToolClient())


class Harness:
    def __init__(self, engine: DialogEngine, transfer_outcome: str = "no_answer", asr_delay: int = 5) -> None:
        self.line = FakeLine()
        self.call = FakeCall(self.line)
        self.tts = FakeTts()
        self.asr = FakeAsr(self.line, TEXTS, delay_ticks=asr_delay)
        self.transfers: list[TransferRequest] = []

        async def transfer(call: FakeCall, req: TransferRequest, whisper) -> TransferResult:  # type: ignore[no-untyped-def]
            self.transfers.append(req)
            await self.line.sleep_ticks(10)
            if transfer_outcome == "connected":
                call.left.set()
            return TransferResult(transfer_outcome)  # type: ignore[arg-type]

        self.deps = AgentDeps(engine=engine, vad_factory=ScriptedVad, asr=self.asr, tts=self.tts,
                              settings=Settings(), transfer=transfer, clock=self.line.now)  # fmt: skip
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Harness:
        self.task = asyncio.create_task(VoiceAgent(self.deps)(self.call))  # type: ignore[arg-type]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        if not self.task.done():
            self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)

    @property
    def over(self) -> bool:
        return self.task is not None and self.task.done()

    def said(self) -> list[str]:
        return [self.tts.texts[p.prompt] for p in self.line.played]

    def played(self, text: str) -> list[int]:
        """Ticks of every frame of ``text`` that went out (over all its plays)."""
        pid = self.tts.texts.index(text)
        return [t for p in self.line.played if p.prompt == pid for t in p.frames]

    async def until_said(self, text: str, finished: bool = True, max_ticks: int = 3000) -> None:
        """Run until ``text`` has started (and, with ``finished``, ended) playing."""

        def done() -> bool:
            if text not in self.tts.texts or not self.played(text):
                return False
            return not finished or not self.line.agent_talking

        await self.line.run_until(done, max_ticks)


async def test_caller_question_is_answered_after_the_greeting(engine: DialogEngine) -> None:
    async with Harness(engine) as h:
        await h.until_said(GREETING)
        greeting_frames = len(h.played(GREETING))
        assert greeting_frames == len(GREETING.split()) * 10  # played whole, not interrupted
        h.line.speak(1000, utterance=1, lead_silence_ms=300)
        await h.until_said(HOURS, finished=False)
        assert h.said()[:2] == [GREETING, HOURS]
        await h.line.run_until(lambda: bool(h.deps.turn_metrics))  # saved once the reply is spoken
        m = h.deps.turn_metrics[-1]
        # Wire time: the caller's last voiced frame -> the answer's first frame. Early end of turn
        # needs 300 ms of silence after the speculative ASR (5 ticks) came back.
        assert m.input == "UserTurn" and m.speculative_hit
        assert m.first_audio_ms is not None and 300 <= m.first_audio_ms <= 420
        assert m.asr_ms is not None and m.asr_ms <= m.first_audio_ms


async def test_barge_in_stops_the_prompt_and_the_caller_is_heard(engine: DialogEngine) -> None:
    async with Harness(engine) as h:
        await h.until_said(GREETING, finished=False)
        await h.line.run_until(lambda: len(h.played(GREETING)) >= 20)
        h.line.speak(1000, utterance=3)
        started = h.line.tick_no + 1  # the tick the caller's first voiced frame arrives
        await h.until_said("We're at 120 Harbor Street, second floor. Parking is behind the building.",
                           finished=False)  # fmt: skip
        greeting = h.played(GREETING)
        assert len(greeting) < len(GREETING.split()) * 10, "the greeting was cut short"
        # Paused after the onset (40 ms = 2 frames) within a frame; never resumed afterwards.
        assert max(greeting) <= started + 2
        await h.line.run_until(lambda: bool(h.deps.turn_metrics))
        assert h.deps.turn_metrics[-1].input == "UserTurn"


async def test_a_cough_pauses_the_prompt_which_resumes_where_it_stopped(engine: DialogEngine) -> None:
    async with Harness(engine) as h:
        await h.until_said(GREETING, finished=False)
        await h.line.run_until(lambda: len(h.played(GREETING)) >= 40)
        h.line.speak(100, utterance=9)  # a blip: shorter than barge_in_min_speech_ms

        def plays() -> list:
            return [p for p in h.line.played if p.prompt == h.tts.prompt_id(GREETING)]

        await h.line.run_until(lambda: len(plays()) == 2 and not h.line.agent_talking)
        await h.line.run_until(lambda: h.line.tick_no > 300)  # and nothing else happens
        plays = plays()
        assert len(plays) == 2, "paused once, resumed once"
        first, second = plays
        gap = second.frames[0] - first.frames[-1]
        assert 300 // 20 <= gap <= 500 // 20  # resumed after the false-barge-in silence (300 ms)
        # Resumed 200 ms before where it stopped: the caller hears those words again, nothing lost.
        assert len(first.frames) + len(second.frames) == len(GREETING.split()) * 10 + 10
        assert h.asr.calls <= 1 and not h.deps.turn_metrics  # a wordless blip is not a turn


async def test_silence_reprompts_then_escalates_to_a_person(engine: DialogEngine) -> None:
    async with Harness(engine) as h:
        await h.until_said(GREETING)
        t0 = h.line.tick_no
        await h.until_said("Sorry, I didn't hear anything.", finished=False)
        assert (h.line.tick_no - t0) * 20 == pytest.approx(6000, abs=60)  # no_input_timeout_ms
        await h.line.run_until(lambda: bool(h.transfers))
        assert "Are you still there?" in h.said()
        assert h.transfers[0].reason == "no_input"
        await h.until_said(NO_ANSWER_PROMPT)  # nobody answered: back with us
        assert [m.input for m in h.deps.turn_metrics] == ["NoInput"] * 3


async def test_transfer_on_request_ends_the_call_when_connected(engine: DialogEngine) -> None:
    async with Harness(engine, transfer_outcome="connected") as h:
        await h.until_said(GREETING)
        h.line.speak(1200, utterance=2, lead_silence_ms=200)
        await h.line.run_until(lambda: h.over)
        assert h.transfers and h.transfers[0].reason == "caller_request"
        assert h.call.end_reason == "transferred"
        assert NO_ANSWER_PROMPT not in h.said()


async def test_caller_hangs_up_mid_prompt(engine: DialogEngine) -> None:
    async with Harness(engine) as h:
        await h.until_said(GREETING, finished=False)
        await h.line.run_until(lambda: len(h.played(GREETING)) >= 15)
        h.line.hang_up()
        await h.line.run_until(lambda: h.over, max_ticks=10)
        assert h.call.end_reason == "caller_hangup"
        assert len(h.played(GREETING)) <= 16  # nothing more was sent after the hang-up
        assert h.task is not None and h.task.exception() is None


async def test_an_asr_failure_loses_the_turn_not_the_call(engine: DialogEngine) -> None:
    async with Harness(engine) as h:
        await h.until_said(GREETING)
        h.asr.fail_next = True
        h.line.speak(1000, utterance=1, lead_silence_ms=200)
        await h.line.run_until(lambda: h.asr.calls >= 1 and not h.line.agent_talking, max_ticks=200)
        await h.line.run_until(lambda: h.line.tick_no > 100)
        h.line.speak(1000, utterance=1, lead_silence_ms=200)
        await h.until_said(HOURS, finished=False)  # still listening after the failure


class GlitchyVad(ScriptedVad):
    """Raises on the first few frames of the caller's speech, like a VAD runtime hiccup."""

    def __init__(self, failures: int) -> None:
        self.failures = failures

    def speech_probability(self, frame: bytes) -> float:
        if frame[0] and self.failures > 0:
            self.failures -= 1
            raise RuntimeError("vad hiccup")
        return super().speech_probability(frame)


async def test_a_vad_glitch_costs_frames_not_the_call(engine: DialogEngine) -> None:
    vad = GlitchyVad(failures=5)
    h = Harness(engine)
    h.deps.vad_factory = lambda: vad
    async with h:
        await h.until_said(GREETING)
        h.line.speak(1000, utterance=1, lead_silence_ms=200)
        await h.until_said(HOURS, finished=False)  # the caller was heard despite the glitch
        assert vad.failures == 0


async def test_key_press_interrupts_and_is_an_input(engine: DialogEngine) -> None:
    async with Harness(engine) as h:
        await h.until_said(GREETING, finished=False)
        await h.line.run_until(lambda: len(h.played(GREETING)) >= 10)
        pressed = h.line.tick_no
        h.call.press("0#", at=h.line.now())  # the terminator ends the entry (no wall-clock wait)
        await h.line.run_until(lambda: bool(h.deps.turn_metrics))
        assert max(h.played(GREETING)) <= pressed + 1
        assert h.deps.turn_metrics[0].input == "Digits"
        assert h.transfers[0].reason == "caller_request"  # 0 is the operator


async def test_a_phone_number_in_groups_is_one_turn_when_digits_are_expected(engine: DialogEngine) -> None:
    async with Harness(engine) as h:
        await h.until_said(GREETING)
        h.line.speak(1200, utterance=4, lead_silence_ms=200)
        await h.until_said(PHONE_PROMPT)
        # "555 ... 123 ... 4567": 500 ms pauses between the groups, longer than an end of turn
        # (600 ms is the ordinary wait, but 300 ms + a finished-looking "5 5 5" ends it early).
        h.line.speak(600, utterance=5, lead_silence_ms=300)
        h.line.speak(600, utterance=6, lead_silence_ms=500)
        h.line.speak(800, utterance=7, lead_silence_ms=500)
        await h.line.run_until(lambda: len(h.deps.turn_metrics) >= 2)
        assert Expectation("digits", 10) in h.asr.expectations  # ASR told what the slot wants
        assert [m.input for m in h.deps.turn_metrics] == ["UserTurn", "UserTurn"]  # not split
        assert any("date of birth" in t for t in h.tts.texts)  # the whole number was taken
