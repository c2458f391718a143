"""speech: the barge-in detector, watching the caller while a prompt plays.

Fed VAD probabilities with each frame's arrival time; reports a possible barge-in at the first
sound (so the prompt pauses at once), a real one once it lasts, and a false one (cough, "mm-hm")
when it stops short, with whether the prompt should resume where it paused or start over.
"""

from __future__ import annotations

from dataclasses import dataclass

from ari_app.speech.turn import TurnSettings, frames_for


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
        self._start_frames = frames_for(s.barge_in_onset_ms)
        self._min_frames = frames_for(s.barge_in_min_speech_ms)
        self._false_frames = frames_for(s.false_barge_in_silence_ms)
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
