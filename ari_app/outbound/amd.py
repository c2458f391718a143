"""outbound: who answered — a person or an answering machine — from the first seconds of audio.

Why our own detector next to Asterisk's ``AMD()``: it reads the same VAD the call already runs
(Silero copes with line noise that fools an energy threshold), and it can ask the ASR about the
first words ("you've reached", "leave a message") when timing alone is not sure. The rule is the
one every detector uses: a person says something short ("Hello?") and waits; a machine talks on.
``benchmarks/amd.py`` measures it against ``AMD()`` on recorded greetings.

Also here: the beep at the end of a voicemail greeting (a steady tone), after which the
campaign's message is left.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ari_app.media.constants import FRAME_INTERVAL, SAMPLE_RATE

Verdict = Literal["human", "machine", "unsure"]

SPEECH_PROB = 0.5
# Phrases of a voicemail greeting (ASR text, lower case): any of them makes it a machine.
MACHINE_WORDS = re.compile(
    r"\b(you'?ve reached|you have reached|messages?|after the (tone|beep)|at the (tone|beep)|"
    r"not available|unavailable|can'?t (come|get) to the phone|voice ?mail|mailbox|"
    r"away from (my|the) (phone|desk))\b"
)


@dataclass(frozen=True)
class AmdSettings:
    initial_silence_s: float = 3.5  # nobody speaks at all: a person who waits for us (unsure)
    greeting_max_s: float = 2.2  # a first utterance longer than this is a recorded greeting
    end_silence_s: float = 0.7  # a pause this long ends the first utterance (shorter: inside it)
    total_s: float = 5.0  # decide by then whatever we heard


class GreetingDetector:
    """Feed one VAD probability per 20 ms frame from the moment of answer; ``verdict`` is set
    once decided (and stays)."""

    def __init__(self, settings: AmdSettings | None = None) -> None:
        self.s = settings or AmdSettings()
        self.t = 0.0
        self.speech_start: float | None = None
        self.last_speech: float | None = None
        self.verdict: Verdict | None = None
        self.reason = ""
        self.decided_at: float | None = None

    def feed(self, prob: float) -> Verdict | None:
        if self.verdict is not None:
            return self.verdict
        self.t += FRAME_INTERVAL
        s, t = self.s, self.t
        if prob >= SPEECH_PROB:
            if self.speech_start is None:
                self.speech_start = t
            self.last_speech = t
            if t - self.speech_start > s.greeting_max_s:
                return self._decide("machine", f"spoke for more than {s.greeting_max_s:g} s")
        elif self.last_speech is not None and t - self.last_speech >= s.end_silence_s:
            assert self.speech_start is not None
            length = self.last_speech - self.speech_start
            return self._decide("human", f"a {length:.1f} s greeting, then waited")
        elif self.speech_start is None and t >= s.initial_silence_s:
            return self._decide("unsure", f"silent for {s.initial_silence_s:g} s")
        if t >= s.total_s:
            return self._decide("unsure", f"no decision within {s.total_s:g} s")
        return None

    def refine(self, first_words: str) -> Verdict | None:
        """The ASR text of the first utterance: voicemail phrasing makes any verdict a machine."""
        if MACHINE_WORDS.search(first_words.lower()):
            self.verdict, self.reason = "machine", f"voicemail words: {first_words!r}"
        return self.verdict

    def _decide(self, verdict: Verdict, reason: str) -> Verdict:
        self.verdict, self.reason, self.decided_at = verdict, reason, self.t
        return verdict


class BeepDetector:
    """A steady tone (voicemail beep, 400-2000 Hz, at least ``min_s``): most of a frame's energy
    in one narrow band, frame after frame at the same pitch. ``feed`` returns True once the beep
    has ended (the moment to start speaking)."""

    def __init__(self, min_s: float = 0.12, min_dbfs: float = -35.0) -> None:
        self.min_frames = max(1, round(min_s / FRAME_INTERVAL))
        self.min_power = (32768.0 * 10 ** (min_dbfs / 20)) ** 2
        self.run = 0
        self.pitch: float | None = None
        self.heard = False

    def feed(self, pcm: bytes) -> bool:
        tone = self._tone(pcm)
        if tone is not None and (self.pitch is None or abs(tone - self.pitch) < 60):
            self.run += 1
            self.pitch = tone
            if self.run >= self.min_frames:
                self.heard = True
            return False
        ended = self.heard
        self.run, self.pitch = 0, None
        return ended

    def _tone(self, pcm: bytes) -> float | None:
        x = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
        if x.size < 64 or float(np.mean(x * x)) < self.min_power:
            return None
        spec = np.abs(np.fft.rfft(x * np.hanning(x.size))) ** 2
        freqs = np.fft.rfftfreq(x.size, 1 / SAMPLE_RATE)
        band = (freqs >= 400) & (freqs <= 2000)
        peak = int(np.argmax(np.where(band, spec, 0)))
        near = spec[max(0, peak - 2) : peak + 3].sum()
        return float(freqs[peak]) if near > 0.8 * spec.sum() else None
