"""Endpointing, speculative ASR and barge-in logic, driven by scripted VAD probabilities."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from ari_app.config import ConfigError, load_settings
from ari_app.media.constants import FRAME_BYTES
from ari_app.media.transport import AudioFrame
from ari_app.speech.asr import Transcript
from ari_app.speech.barge_in import BargeIn, BargeInDetector, FalseBargeIn, PossibleBargeIn
from ari_app.speech.endpointing import (
    Endpointer,
    NoInput,
    SpeculativePause,
    SpeechResumed,
    SpeechStarted,
    TurnEnded,
)
from ari_app.speech.recognition import TurnTaker, UserTurn, looks_complete
from ari_app.speech.turn import TurnSettings

F = 0.02  # seconds per frame


def script(*parts: tuple[float, int]) -> list[float]:
    """(probability, milliseconds) runs -> one probability per 20 ms frame."""
    return [p for p, ms in parts for _ in range(ms // 20)]


def frame(i: int) -> bytes:
    # Distinct content per frame, so we can check which frames ended up in a turn.
    return i.to_bytes(4, "little") * (FRAME_BYTES // 4)


def run(ep: Endpointer, probs: list[float]) -> list[tuple[int, object]]:
    events = []
    for i, p in enumerate(probs):
        events += [(i, e) for e in ep.feed(frame(i), p, i * F)]
    return events


def test_one_utterance_gives_start_speculation_and_end_with_pre_roll() -> None:
    ep = Endpointer(TurnSettings())
    events = run(ep, script((0.0, 1000), (0.9, 800), (0.0, 1000)))
    kinds = [type(e).__name__ for _, e in events]
    assert kinds == ["SpeechStarted", "SpeculativePause", "TurnEnded"]
    (i_start, started), (i_spec, spec), (i_end, ended) = events
    assert i_start == 52  # confirmed after 60 ms of speech
    assert started.at == pytest.approx(50 * F)  # the first voiced frame, not the confirming one
    assert i_spec == 50 + 40 + 10 - 1  # 200 ms into the silence
    assert i_end == 50 + 40 + 30 - 1  # 600 ms into the silence
    assert isinstance(ended, TurnEnded) and ended.reason == "silence"
    # 200 ms pre-roll + 800 ms speech + 200 ms tail; identical to the speculative audio.
    assert len(ended.audio) == (10 + 40 + 10) * FRAME_BYTES
    assert ended.audio == spec.audio
    assert ended.audio[:FRAME_BYTES] == frame(40)
    assert ended.end_of_speech_at == pytest.approx(89 * F)


def test_mid_sentence_pause_shorter_than_end_silence_is_one_turn() -> None:
    ep = Endpointer(TurnSettings())
    events = run(ep, script((0.0, 200), (0.9, 600), (0.1, 400), (0.9, 600), (0.0, 800)))
    kinds = [type(e).__name__ for _, e in events]
    assert kinds == ["SpeechStarted", "SpeculativePause", "SpeechResumed", "SpeculativePause", "TurnEnded"]
    ended = events[-1][1]
    assert isinstance(ended, TurnEnded)
    assert len(ended.audio) == (10 + 30 + 20 + 30 + 10) * FRAME_BYTES


def test_hysteresis_keeps_speech_through_dips_above_silence_threshold() -> None:
    ep = Endpointer(TurnSettings())
    events = run(ep, script((0.9, 400), (0.4, 1000), (0.9, 200), (0.0, 700)))
    assert [type(e).__name__ for _, e in events] == ["SpeechStarted", "SpeculativePause", "TurnEnded"]


def test_short_blips_never_start_speech_and_no_input_fires_and_rearms() -> None:
    ep = Endpointer(TurnSettings(no_input_timeout_ms=2000))
    probs = [0.9 if i % 10 == 0 else 0.0 for i in range(250)]  # a 20 ms click every 200 ms
    events = run(ep, probs)
    assert all(isinstance(e, NoInput) for _, e in events)
    assert len(events) == 2  # 5 s of clicks: NoInput at ~2 s and ~4 s
    assert events[0][1].waited_ms == 2000


def test_max_length_cuts_a_caller_who_never_pauses() -> None:
    ep = Endpointer(TurnSettings(max_utterance_ms=3000))
    events = run(ep, script((0.9, 7000)))
    ends = [e for _, e in events if isinstance(e, TurnEnded)]
    assert [e.reason for e in ends] == ["max_length", "max_length"]
    assert len(ends[0].audio) == 3000 // 20 * FRAME_BYTES
    assert sum(isinstance(e, SpeechStarted) for _, e in events) == 3  # the third turn is still open


def test_turn_settings_reject_inconsistent_values() -> None:
    with pytest.raises(ValueError, match="speculative_pause_ms must be shorter"):
        TurnSettings(speculative_pause_ms=700, end_of_turn_silence_ms=600)
    with pytest.raises(ConfigError, match=r"speech\.turn\.silence_threshold"):
        load_settings(speech={"turn": {"silence_threshold": 2}})


def test_barge_in_needs_sustained_speech() -> None:
    det = BargeInDetector(TurnSettings())
    events = [(i, e) for i, p in enumerate(script((0.0, 200), (0.9, 1000))) for e in det.feed(p, i * F)]
    assert [type(e) for _, e in events] == [PossibleBargeIn, BargeIn]
    assert events[1][0] == 10 + 20 - 1  # after 400 ms of speech
    assert events[1][1].at == pytest.approx(10 * F)


def test_short_blip_is_a_false_barge_in_that_resumes() -> None:
    det = BargeInDetector(TurnSettings())
    events = [e for i, p in enumerate(script((0.9, 200), (0.0, 600))) for e in det.feed(p, i * F)]
    assert [type(e) for e in events] == [PossibleBargeIn, FalseBargeIn]
    assert events[1].resume is True
    late = BargeInDetector(TurnSettings(false_barge_in_resume_window_ms=100))
    events = [e for i, p in enumerate(script((0.9, 200), (0.0, 600))) for e in late.feed(p, i * F)]
    assert events[-1] == FalseBargeIn(at=0.0, resume=False)


class ScriptedVad:
    """Reads the probability from the frame itself (first byte / 100)."""

    name = "scripted"

    def speech_probability(self, frame: bytes) -> float:
        return frame[0] / 100

    def reset(self) -> None:
        pass


class RecordingAsr:
    """Returns a transcript naming how much audio it got; records every call."""

    name = "recording"

    def __init__(self, delay: float = 0.0, text: str = "hello") -> None:
        self.calls: list[int] = []
        self.delay = delay
        self.text = text

    async def transcribe(
        self, pcm8k: bytes, expect: object = None, *, speculative: bool = False
    ) -> Transcript:
        self.calls.append(len(pcm8k))
        await asyncio.sleep(self.delay)
        return Transcript(self.text, 0.9, len(pcm8k) // 16, self.name)


async def feed(probs: list[float]) -> AsyncIterator[AudioFrame]:
    """Frames as the transport delivers them: arriving every 20 ms (wire time), numbered."""
    for i, p in enumerate(probs):
        yield AudioFrame(bytes([int(p * 100)]) * FRAME_BYTES, received_at=(i + 1) * F, sequence=i)
        await asyncio.sleep(0)


class FakeClock:
    """Processing time: a transcript becomes ready one frame after the frame that completed it."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    async def follow(self, frames: AsyncIterator[AudioFrame]) -> AsyncIterator[AudioFrame]:
        async for f in frames:
            self.t = f.received_at + F
            yield f


async def test_turn_taker_reuses_speculative_result_when_caller_stays_silent() -> None:
    asr = RecordingAsr()
    taker = TurnTaker(asr, TurnSettings(), clock=(clock := FakeClock()))
    out = [
        t
        async for t in taker.turns(
            clock.follow(feed(script((0.0, 400), (0.9, 1000), (0.0, 800)))), ScriptedVad()
        )
    ]
    assert len(out) == 1 and isinstance(out[0], UserTurn)
    turn = out[0]
    assert turn.speculative_hit is True
    assert len(asr.calls) == 1  # ASR ran once, at the pause
    assert turn.audio_ms == 200 + 1000 + 200
    assert turn.transcript.text == "hello"
    assert turn.transcript_ready_at > turn.end_of_speech_at


async def test_turn_taker_discards_speculation_when_caller_resumes() -> None:
    asr = RecordingAsr()
    taker = TurnTaker(asr, TurnSettings(), clock=(clock := FakeClock()))
    probs = script((0.0, 200), (0.9, 600), (0.0, 300), (0.9, 600), (0.0, 800))
    out = [t async for t in taker.turns(clock.follow(feed(probs)), ScriptedVad())]
    assert len(out) == 1 and isinstance(out[0], UserTurn)
    assert out[0].speculative_hit is True  # the second pause's speculation matched the final audio
    assert len(asr.calls) == 2
    assert asr.calls[1] > asr.calls[0]


async def test_turn_taker_skips_wordless_turns_and_reports_no_input() -> None:
    asr = RecordingAsr(text="  ")
    taker = TurnTaker(asr, TurnSettings(no_input_timeout_ms=1000), clock=(clock := FakeClock()))
    out = [t async for t in taker.turns(clock.follow(feed(script((0.9, 500), (0.0, 2000)))), ScriptedVad())]
    assert len(asr.calls) == 1
    assert [type(t) for t in out] == [NoInput]


def test_speculative_pause_event_carries_audio() -> None:
    ep = Endpointer(TurnSettings(pre_roll_ms=0))
    events = run(ep, script((0.9, 100), (0.0, 200)))
    spec = [e for _, e in events if isinstance(e, SpeculativePause)]
    assert len(spec) == 1 and len(spec[0].audio) == (5 + 10) * FRAME_BYTES
    assert not any(isinstance(e, SpeechResumed) for _, e in events)


async def test_turn_ends_at_the_pause_when_the_sentence_is_finished() -> None:
    asr = RecordingAsr(text="I need to reschedule my appointment.")
    taker = TurnTaker(asr, TurnSettings(), clock=(clock := FakeClock()))
    out = [
        t
        async for t in taker.turns(
            clock.follow(feed(script((0.0, 200), (0.9, 1000), (0.0, 800)))), ScriptedVad()
        )
    ]
    assert len(out) == 1 and isinstance(out[0], UserTurn)
    assert out[0].reason == "early" and out[0].speculative_hit
    # ended at the speculative pause (200 ms) plus a frame or two, not after 600 ms of silence
    assert (out[0].transcript_ready_at - out[0].end_of_speech_at) < 0.4
    assert len(asr.calls) == 1


async def test_a_pause_mid_sentence_waits_for_the_full_silence() -> None:
    asr = RecordingAsr(text="I was charged twice last month and")
    taker = TurnTaker(asr, TurnSettings(), clock=(clock := FakeClock()))
    out = [
        t
        async for t in taker.turns(
            clock.follow(feed(script((0.0, 200), (0.9, 1000), (0.0, 800)))), ScriptedVad()
        )
    ]
    assert len(out) == 1 and out[0].reason == "silence"
    off = TurnTaker(RecordingAsr(text="Done."), TurnSettings(early_end_on_complete=False), clock=(clock := FakeClock()))  # fmt: skip
    out = [
        t
        async for t in off.turns(
            clock.follow(feed(script((0.0, 200), (0.9, 1000), (0.0, 800)))), ScriptedVad()
        )
    ]
    assert out[0].reason == "silence"


def test_looks_complete() -> None:
    assert looks_complete("I need to reschedule my appointment.")
    assert looks_complete("What time do you open?")
    assert looks_complete("Yes.")
    assert not looks_complete("I was charged twice and.")
    assert not looks_complete("my number is")
    assert not looks_complete("I need to...")
    assert not looks_complete("")
    # A question still missing its verb, punctuated by Whisper at a mid-sentence pause.
    assert not looks_complete("What time do you?")
    assert not looks_complete("When can I?")
    assert looks_complete("Can you?")  # a whole reply
    assert looks_complete("How are you?")
    assert looks_complete("Yes I do.")
    assert looks_complete("Can you do it?")
