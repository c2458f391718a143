"""speech: endpointing, a pure state machine that decides where a caller's turn starts and ends.

Fed one 20 ms frame, its VAD probability and its arrival time (wire time) at a time. It never
looks at a clock: every event is stamped with the arrival time of the frame that caused it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal

from ari_app.media.constants import FRAME_MS
from ari_app.speech.turn import TurnSettings, frames_for


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
        self._start_frames = frames_for(s.speech_start_ms)
        self._pause_frames = frames_for(s.speculative_pause_ms)
        self._end_frames = frames_for(s.end_of_turn_silence_ms)
        self._max_frames = frames_for(s.max_utterance_ms)
        self._no_input_frames = frames_for(s.no_input_timeout_ms)
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

    def set_end_of_turn_silence(self, ms: int) -> None:
        """How much silence ends a turn from now on (longer while a digit string is expected)."""
        self._end_frames = max(frames_for(ms), self._pause_frames + 1)

    def restart_no_input_timer(self) -> None:
        """Count the caller's silence from now (the agent just started or stopped talking)."""
        self._idle_frames = 0

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
