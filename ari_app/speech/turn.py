"""Turn-taking: every timing default lives here (one place to tune, like LiveKit's voice/turn.py).

``Endpointer`` is a pure state machine fed one 20 ms frame and its VAD probability at a time.
``TurnTaker`` drives it from a live frame stream and runs ASR speculatively at the first pause, so
the transcript is usually ready the moment the end-of-turn silence has elapsed.
``BargeInDetector`` watches the caller while a prompt plays.

All durations are counted in frames (20 ms), not wall time, so behaviour does not depend on how
bursty the frame delivery is; ``now`` (monotonic seconds) only stamps the events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ari_app.speech.audio import FRAME_MS, pcm_ms

if TYPE_CHECKING:
    from ari_app.speech.asr import Asr, Transcript
    from ari_app.speech.vad import Vad

log = logging.getLogger(__name__)


class TurnSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # A frame is voiced at or above this probability...
    speech_threshold: float = Field(default=0.5, gt=0, lt=1)
    # ...and, once speech has started, stays "still speech" down to this one (hysteresis, as silero does).
    silence_threshold: float = Field(default=0.35, gt=0, lt=1)
    # Consecutive voiced time needed to declare speech started (rejects clicks and single noisy frames).
    speech_start_ms: int = Field(default=60, ge=FRAME_MS)
    # Audio kept from before speech start so the first syllable is not clipped.
    pre_roll_ms: int = Field(default=200, ge=0)
    # Silence after the last voiced frame that ends the turn.
    end_of_turn_silence_ms: int = Field(default=600, ge=100)
    # Silence after which ASR starts speculatively (thrown away if the caller resumes).
    speculative_pause_ms: int = Field(default=200, ge=FRAME_MS)
    # End the turn at the speculative pause (instead of waiting the full end-of-turn silence) when
    # the speculative transcript is a finished sentence: ends in . ? or ! and not on a word that
    # announces more ("and", "to", "my", "um"...). Saves ~250 ms on most turns; a caller who goes
    # on anyway barges in and is heard.
    early_end_on_complete: bool = True
    # ...but never before this much silence (a breath inside a sentence is shorter).
    early_end_min_silence_ms: int = Field(default=300, ge=FRAME_MS)
    # Hard cut for a caller who never pauses.
    max_utterance_ms: int = Field(default=15000, ge=1000)
    # No speech at all for this long after listening starts -> NoInput (re-armed after each report).
    no_input_timeout_ms: int = Field(default=6000, ge=500)
    # While a prompt plays, the prompt pauses as soon as the caller makes this much sound (a lower bar
    # than speech start: Silero rates some onsets below 0.3 for ~250 ms, and pausing costs little
    # because a false barge-in resumes the prompt)...
    barge_in_onset_threshold: float = Field(default=0.15, gt=0, lt=1)
    barge_in_onset_ms: int = Field(default=40, ge=FRAME_MS)
    # ...and speech must last this long to count as a barge-in...
    barge_in_min_speech_ms: int = Field(default=400, ge=FRAME_MS)
    # ...and a shorter blip (cough, "mm-hm", a DTMF click) is declared false after this much silence.
    false_barge_in_silence_ms: int = Field(default=300, ge=FRAME_MS)
    # A false barge-in reported within this time of the blip lets the prompt resume where it paused;
    # later than that the caller should repeat the prompt from the start.
    false_barge_in_resume_window_ms: int = Field(default=1500, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> TurnSettings:
        if self.silence_threshold > self.speech_threshold:
            raise ValueError("silence_threshold must not be above speech_threshold")
        if self.speculative_pause_ms >= self.end_of_turn_silence_ms:
            raise ValueError("speculative_pause_ms must be shorter than end_of_turn_silence_ms")
        return self


def _frames(ms: int) -> int:
    return max(1, ms // FRAME_MS)


# ---- events -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpeechStarted:
    at: float  # when the first voiced frame of the run arrived


@dataclass(frozen=True)
class SpeculativePause:
    audio: bytes  # the utterance so far (pre-roll + speech + the pause), ready for ASR
    at: float


@dataclass(frozen=True)
class SpeechResumed:
    at: float  # the speculative transcript (if any) is stale now


@dataclass(frozen=True)
class TurnEnded:
    audio: bytes
    reason: Literal["silence", "max_length"]
    started_at: float
    end_of_speech_at: float  # arrival time of the last voiced frame
    at: float


@dataclass(frozen=True)
class NoInput:
    at: float
    waited_ms: int


TurnEvent = SpeechStarted | SpeculativePause | SpeechResumed | TurnEnded | NoInput


class Endpointer:
    """Decides where a caller's turn starts and ends from per-frame VAD probabilities."""

    def __init__(self, settings: TurnSettings | None = None) -> None:
        self.settings = s = settings or TurnSettings()
        self._start_frames = _frames(s.speech_start_ms)
        self._pause_frames = _frames(s.speculative_pause_ms)
        self._end_frames = _frames(s.end_of_turn_silence_ms)
        self._max_frames = _frames(s.max_utterance_ms)
        self._no_input_frames = _frames(s.no_input_timeout_ms)
        self._pre_roll: deque[bytes] = deque(maxlen=s.pre_roll_ms // FRAME_MS)
        self.reset()

    def reset(self) -> None:
        """Start listening afresh (e.g. after a prompt finished): clears audio and the no-input timer."""
        self._in_speech = False
        self._pending: list[bytes] = []  # voiced frames not yet confirmed as speech
        self._pending_at = 0.0
        self._audio: list[bytes] = []
        self._voiced_end = 0  # len(self._audio) just after the last voiced frame
        self._silent_frames = 0
        self._speech_frames = 0
        self._speculated = False
        self._started_at = 0.0
        self._last_voiced_at = 0.0
        self._idle_frames = 0
        self._pre_roll.clear()

    @property
    def in_speech(self) -> bool:
        return self._in_speech

    @property
    def silence_ms(self) -> int:
        """How long the caller has been quiet inside the current turn."""
        return self._silent_frames * FRAME_MS

    @property
    def last_voiced_at(self) -> float:
        return self._last_voiced_at

    def feed(self, frame: bytes, prob: float, now: float) -> list[TurnEvent]:
        if self._in_speech:
            return self._feed_speech(frame, prob, now)
        return self._feed_idle(frame, prob, now)

    def _feed_idle(self, frame: bytes, prob: float, now: float) -> list[TurnEvent]:
        events: list[TurnEvent] = []
        if prob >= self.settings.speech_threshold:
            if not self._pending:
                self._pending_at = now
            self._pending.append(frame)
            if len(self._pending) >= self._start_frames:
                self._in_speech = True
                self._audio = [*self._pre_roll, *self._pending]
                self._voiced_end = len(self._audio)
                self._speech_frames = len(self._pending)
                self._started_at = self._pending_at
                self._last_voiced_at = now
                self._pending = []
                self._pre_roll.clear()
                return [SpeechStarted(at=self._started_at)]
            return events
        # An unconfirmed voiced run was a blip: it becomes pre-roll history.
        for f in self._pending:
            self._pre_roll.append(f)
        self._pending = []
        self._pre_roll.append(frame)
        self._idle_frames += 1
        if self._idle_frames >= self._no_input_frames:
            self._idle_frames = 0
            events.append(NoInput(at=now, waited_ms=self._no_input_frames * FRAME_MS))
        return events

    def _feed_speech(self, frame: bytes, prob: float, now: float) -> list[TurnEvent]:
        s = self.settings
        events: list[TurnEvent] = []
        self._audio.append(frame)
        self._speech_frames += 1
        # After a speculative pause only clear speech counts as resuming; before it, hysteresis applies.
        voiced_floor = s.speech_threshold if self._speculated else s.silence_threshold
        if prob >= voiced_floor:
            self._silent_frames = 0
            self._voiced_end = len(self._audio)
            self._last_voiced_at = now
            if self._speculated:
                self._speculated = False
                events.append(SpeechResumed(at=now))
        else:
            self._silent_frames += 1
            if self._silent_frames == self._pause_frames:
                self._speculated = True
                events.append(SpeculativePause(audio=self._turn_audio(), at=now))
            if self._silent_frames >= self._end_frames:
                events.append(self._end("silence", now))
                return events
        if self._speech_frames >= self._max_frames:
            events.append(self._end("max_length", now))
        return events

    def _turn_audio(self) -> bytes:
        # The same trailing pause for the speculative and the final audio: if the caller stayed
        # silent they are byte-identical, which is what lets TurnTaker reuse the speculative result.
        end = min(len(self._audio), self._voiced_end + self._pause_frames)
        return b"".join(self._audio[:end])

    def _end(self, reason: Literal["silence", "max_length"], now: float) -> TurnEnded:
        audio = self._turn_audio() if reason == "silence" else b"".join(self._audio)
        ended = TurnEnded(
            audio=audio,
            reason=reason,
            started_at=self._started_at,
            end_of_speech_at=self._last_voiced_at,
            at=now,
        )
        self.reset()
        return ended


# ---- the async turn taker -----------------------------------------------------------------------

# Words a sentence does not end on: a pause after them is a mid-sentence pause.
_CONTINUES = frozenset(
    "and but or so because if then that to of for with at in on my your our the a an is are was "
    "were i i'm it's um uh er erm like also plus which who when where what".split()
)


def looks_complete(text: str) -> bool:
    """Heuristic end-of-sentence test on an ASR transcript (Whisper punctuates)."""
    t = text.strip()
    if not t or t[-1] not in ".?!" or t.endswith("..."):
        return False
    words = t.rstrip(".?!").lower().replace(",", " ").split()
    return bool(words) and words[-1] not in _CONTINUES


@dataclass(frozen=True)
class UserTurn:
    transcript: Transcript
    audio_ms: int
    end_of_speech_at: float  # monotonic time the last voiced frame arrived
    transcript_ready_at: float  # monotonic time the transcript was available
    speculative_hit: bool  # the transcript came from the speculative ASR run
    reason: Literal["silence", "max_length", "early"] = "silence"

    @property
    def latency_ms(self) -> float:
        """End of speech to transcript: what the caller feels as the agent's thinking pause."""
        return (self.transcript_ready_at - self.end_of_speech_at) * 1000


@dataclass
class _Speculation:
    audio: bytes
    task: asyncio.Task[Transcript] = field(repr=False)


class TurnTaker:
    """Turns a live 8 kHz frame stream into transcribed user turns (and NoInput reports).

    Empty transcripts (noise that fooled the VAD) are not yielded; listening simply continues.
    """

    def __init__(
        self,
        vad: Vad,
        asr: Asr,
        settings: TurnSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.vad = vad
        self.asr = asr
        self.endpointer = Endpointer(settings)
        self.clock = clock
        self._speculation: _Speculation | None = None

    async def turns(self, frames: AsyncIterator[bytes]) -> AsyncIterator[UserTurn | NoInput]:
        try:
            async for frame in frames:
                now = self.clock()
                prob = self.vad.speech_probability(frame)
                for event in self.endpointer.feed(frame, prob, now):
                    result = await self._handle(event)
                    if result is not None:
                        yield result
                early = self._early_turn()
                if early is not None:
                    yield early
        finally:
            await self._drop_speculation()

    async def _handle(self, event: TurnEvent) -> UserTurn | NoInput | None:
        if isinstance(event, NoInput):
            return event
        if isinstance(event, SpeculativePause):
            await self._drop_speculation()
            task = asyncio.create_task(self.asr.transcribe(event.audio), name="speculative-asr")
            self._speculation = _Speculation(event.audio, task)
        elif isinstance(event, SpeechResumed):
            await self._drop_speculation()
        elif isinstance(event, TurnEnded):
            return await self._finish(event)
        return None

    async def _finish(self, ended: TurnEnded) -> UserTurn | None:
        spec, self._speculation = self._speculation, None
        hit = spec is not None and spec.audio == ended.audio
        if spec is not None and hit:
            transcript = await spec.task
        else:
            if spec is not None:
                await _cancel(spec.task)
            transcript = await self.asr.transcribe(ended.audio)
        ready = self.clock()
        if not transcript.text.strip():
            log.debug("turn of %d ms had no words; still listening", pcm_ms(ended.audio))
            return None
        return UserTurn(
            transcript=transcript,
            audio_ms=pcm_ms(ended.audio),
            end_of_speech_at=ended.end_of_speech_at,
            transcript_ready_at=ready,
            speculative_hit=hit,
            reason=ended.reason,
        )

    def _early_turn(self) -> UserTurn | None:
        """The speculative transcript is in and reads as a finished sentence: end the turn now."""
        spec = self._speculation
        if (
            spec is None
            or not spec.task.done()
            or not self.endpointer.settings.early_end_on_complete
            or not self.endpointer.in_speech
            or spec.task.cancelled()
            or spec.task.exception() is not None
        ):
            return None
        if self.endpointer.silence_ms < self.endpointer.settings.early_end_min_silence_ms:
            return None
        transcript = spec.task.result()
        if not looks_complete(transcript.text):
            return None
        self._speculation = None
        end_of_speech = self.endpointer.last_voiced_at
        self.endpointer.reset()
        return UserTurn(
            transcript=transcript,
            audio_ms=pcm_ms(spec.audio),
            end_of_speech_at=end_of_speech,
            transcript_ready_at=self.clock(),
            speculative_hit=True,
            reason="early",
        )

    async def _drop_speculation(self) -> None:
        spec, self._speculation = self._speculation, None
        if spec is not None:
            await _cancel(spec.task)


async def _cancel(task: asyncio.Task[Transcript]) -> None:
    # The executor thread under a cancelled transcription finishes on its own; we just stop waiting.
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


# ---- barge-in ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PossibleBargeIn:
    at: float  # the caller started making sound: duck or pause the prompt now


@dataclass(frozen=True)
class BargeIn:
    at: float  # when the caller's speech started


@dataclass(frozen=True)
class FalseBargeIn:
    at: float  # when the blip started
    resume: bool  # True: resume the paused prompt; False: too long ago, repeat it


BargeInEvent = PossibleBargeIn | BargeIn | FalseBargeIn


class BargeInDetector:
    """Feed VAD probabilities while a prompt plays; reports real and false barge-ins."""

    def __init__(self, settings: TurnSettings | None = None) -> None:
        self.settings = s = settings or TurnSettings()
        self._start_frames = _frames(s.barge_in_onset_ms)
        self._min_frames = _frames(s.barge_in_min_speech_ms)
        self._false_frames = _frames(s.false_barge_in_silence_ms)
        self.reset()

    def reset(self) -> None:
        self._run = 0  # consecutive voiced frames before the blip is confirmed as sound
        self._active = False  # a possible barge-in is being evaluated
        self._voiced = 0
        self._silent = 0
        self._started_at = 0.0
        self._confirmed = False

    def feed(self, prob: float, now: float) -> list[BargeInEvent]:
        s = self.settings
        if self._confirmed:
            return []
        if not self._active:
            if prob >= s.barge_in_onset_threshold:
                if self._run == 0:
                    self._started_at = now
                self._run += 1
                if self._run >= self._start_frames:
                    self._active, self._voiced, self._silent = True, self._run, 0
                    return self._check_min(now) or [PossibleBargeIn(at=self._started_at)]
            else:
                self._run = 0
            return []
        if prob >= s.silence_threshold:
            self._voiced += 1
            self._silent = 0
            return self._check_min(now)
        self._silent += 1
        if self._silent >= self._false_frames:
            resume = (now - self._started_at) * 1000 <= s.false_barge_in_resume_window_ms
            started = self._started_at
            self.reset()
            return [FalseBargeIn(at=started, resume=resume)]
        return []

    def _check_min(self, now: float) -> list[BargeInEvent]:
        if self._voiced >= self._min_frames:
            self._confirmed = True  # one BargeIn per prompt; reset() before the next prompt
            return [BargeIn(at=self._started_at)]
        return []
