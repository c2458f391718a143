"""speech: what the open question expects the caller to say, so recognition can listen for it.

The dialogue sets it each time it asks (a phone number of 10 digits, one of the offered times,
a date, yes or no); the turn taker uses it for endpointing (wait through the pauses between digit
groups) and the ASR for biasing (Whisper's prompt) and for several hypotheses, among which the
slot's validator picks the one that parses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ari_app.speech.normalize import normalize_for_speech

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_AM_PM = re.compile(r"\s*\b[AaPp]\.?\s?[Mm]\.?$")


def _clock_words(time: str) -> str:
    """How else a time is said: "3:30" -> "half past three", "10" -> "ten o'clock" ("" if neither)."""
    m = re.fullmatch(r"(\d{1,2})(?::(\d\d))?", time.strip())
    if m is None or m.group(2) not in (None, "30"):
        return ""
    hour = normalize_for_speech(m.group(1))
    return f"half past {hour}" if m.group(2) else f"{hour} o'clock"


@dataclass(frozen=True)
class Expectation:
    kind: str  # the slot type: digits, time, date, yes_no, name, choice, text, or request (no slot open)
    digits: int | None = None  # a digit string of exactly this many digits
    choices: tuple[str, ...] = ()  # what was offered, as the caller heard it ("11:30 AM"); for a
    # request, what the agent can help with ("rescheduling your appointment", "the refund")

    @property
    def n_best(self) -> int:
        """Hypotheses worth decoding: where a validator can tell right from wrong."""
        if self.kind in ("yes_no", "request"):  # choices here serve a change pick or the prompt only
            return 1
        return 3 if self.kind in ("digits", "time", "number") or self.choices else 1

    @property
    def candidates(self) -> tuple[str, ...]:
        """The few answers this question allows, for closed-set scoring of a short answer the
        free transcript missed (closed_set.py). Empty: the answer space is open (digits, a birth
        date, a name). A yes or no itself is scored from how the answer starts, not from here."""
        if self.kind == "date":
            # "Next Thursday" scored as "Thursday" starts wrong ("Next" is what was heard first).
            return (
                *WEEKDAYS,
                *(f"Next {d}" for d in WEEKDAYS),
                *(f"This {d}" for d in WEEKDAYS),
                "Today",
                "Tomorrow",
            )
        if self.kind in ("time", "yes_no") and self.choices:
            # At a confirmation (yes_no): the offered values a caller may change to.
            # "11:30 AM" is often said "eleven thirty"; and a time Whisper would write as digits
            # but heard unclearly ("free first") scores better in words than as "3:30".
            bare = [_AM_PM.sub("", c) for c in self.choices]
            words = (*(normalize_for_speech(b) for b in bare), *(_clock_words(b) for b in bare))
            return tuple(dict.fromkeys(w for w in (*self.choices, *bare, *words) if w))
        return ()

    def whisper_prompt(self) -> str | None:
        """Text Whisper reads as 'what was said before': it primes the form of the answer.

        Never a whole plausible answer (a prompt can leak into the transcript on unclear audio),
        so a leaked prompt fails validation instead of filling the slot.
        """
        if self.kind in ("digits", "number"):
            return "Numbers are read out one digit at a time, like 4 0 7, 2 1 9."
        if self.kind == "request" and self.choices:
            # What the agent can help with, as its menu says it: the words callers use for their
            # request ("appointment", "order", "refund") are then Whisper's likely words. Spoken
            # requests (benchmarks/greeting_prompt.py, 6 held-out voices, clean and 15 dB): routed
            # right 474 -> 501 of 756, to a wrong flow 14 -> 15 (tuning: 248 -> 252, 8 -> 10).
            listed = (
                ", ".join(self.choices[:-1]) + f", or {self.choices[-1]}"
                if len(self.choices) > 1
                else self.choices[0]
            )
            return f"I can help with {listed}."
        if self.kind == "time" and self.choices:
            return f"The times offered were {', '.join(self.choices)}."
        if self.kind == "date_of_birth":
            # The example year leaks into what Whisper writes ("nineteen eighty five" came out
            # "1980 time" under a 1980 example): one far from most callers' years. Measured over
            # 66 spoken birth dates, 6 voices: 42 right (1980 example: 39, none: 36).
            return "Dates are said like March 3rd, 1962, or next Tuesday."
        if self.kind == "date":
            return "Dates are said like March 3rd, 1980, or next Tuesday."
        return None
