"""Test caller: a persona that listens to the agent and answers the question it was asked.

The independent evaluation's callers wait for the agent and answer like a person: asked for the
phone number, they give the phone number, whatever the script order. A fixed list of lines read
out in sequence measures the script's luck instead, so the task-success benchmark uses this.

The persona hears the agent through ASR (what a person hears is the audio, not our logs), finds
the topic of the last question it asked by keywords, and says the next line it has for that
topic; a topic asked again gets the next phrasing (the last one repeats). Topics it has no line
for get the ``"*"`` lines, or silence. A hand-over or goodbye ends the call after the agent has
finished talking.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ari_app.testcaller.caller import Dtmf, Silence, Step, Utterance

# topic -> phrases that mark the agent asking about it; the phrase that ends last in a turn wins
# (on a tie the longer one: "anything else I can help you with" is a closing, not a request).
TOPICS: Mapping[str, tuple[str, ...]] = {
    "goodbye": ("goodbye", "good bye", "connect you"),
    "closing": ("anything else", "anything else i can help you with", "anything else i can help with"),
    "phone": ("phone number", "digit phone", "digits of your phone", "the rest of the number"),
    "birth": ("date of birth", "birth date", "were you born", "your birthday"),
    "order": ("order number",),
    "time": ("which time", "these times", "isn't available", "which would you like", "which one would"),
    "day": ("what day", "which day", "another day", "day would you like", "new day", "what date"),
    # "Did you want help with <a request>?": a caller who wanted something else says so (Persona.wants).
    "suggest": ("did you want help with", "do you want help with"),
    "confirm": (
        "shall i", "did you want", "is that right", "should i", "do you want me",
        "is that correct", "right?", "would you like me to", "do you want to", "want me to",
    ),
    "presence": ("are you still there", "still with me"),
    # Asked to repeat or finish what was just said (a read-back): the same topic again.
    "again": ("the whole number again", "say the whole number", "go on with the rest", "whole number"),
    # Explicitly offered the keypad: a caller who has keys for it presses them.
    "keypad": ("try the keypad", "please type", "type it on your keypad"),
    "request": ("help you", "help with", "what would you like to do", "can i help", "what can i do"),
}  # fmt: skip
DIGIT_TOPICS = ("phone", "order")  # the questions a persona's "keypad" keys answer
SILENT_TURNS_BEFORE_HANGUP = 2  # the agent said nothing twice running: it is waiting or gone


def topic_of(text: str) -> str | None:
    """The topic of the last question in what the agent said (None: no question recognised)."""
    low = " ".join(re.sub(r"[^a-z0-9?' ]+", " ", text.lower()).split())
    # A keypad menu of requests ("I can help with ... You can also press 1 for ..."): a caller
    # with a key for theirs presses it (Persona falls back to saying the request again).
    # Whisper writes what it hears either way: "press 1 for" or "press one for".
    if "i can help with" in low and re.search(r"\bpress (?:1|one) for\b", low):
        return "menu"
    best: tuple[int, int, str] | None = None
    for topic, marks in TOPICS.items():
        for mark in marks:
            at = low.rfind(mark)
            if at >= 0 and (best is None or (at + len(mark), len(mark)) > best[:2]):
                best = (at + len(mark), len(mark), topic)
    return best[2] if best else None


@dataclass
class Persona:
    """One caller: a voice and, per topic, the lines to say in order ("#123" keys, None silence)."""

    answers: Mapping[str, Sequence[str | None]]
    hear: Callable[[np.ndarray], str]  # agent audio (8 kHz int16) -> text, e.g. Whisper
    engine: str = "auto"
    voice: str | None = None
    snr_db: float | None = None
    # Words that name what this caller called about ("refund"): a suggestion naming none of them
    # is refused with the request ("No. I need a refund."), as a person would. Empty: any
    # suggestion is answered like a confirmation.
    wants: tuple[str, ...] = ()
    max_turns: int = 14
    heard: list[str] = field(default_factory=list)  # what the caller understood, per agent turn
    _used: dict[str, int] = field(default_factory=dict)
    _pending: str = ""
    _silent: int = 0
    _turns: int = 0
    _last_topic: str | None = None

    def line_for(self, topic: str | None) -> str | bool | None:
        """The next line for ``topic``: text, None (stay silent) or False (nothing: keep listening)."""
        if topic == "suggest":
            suggested = self._pending.lower().rpartition("help with")[2]
            if not self.wants or any(w in suggested for w in self.wants):
                topic = "confirm"
            elif isinstance(request := self.line_for("request"), str) and not request.startswith("#"):
                return f"No. {request}"
            else:
                return "No."
        if topic == "again":
            topic = self._last_topic
        elif topic == "menu" and "menu" not in self.answers:
            topic = "request"
        elif topic == "keypad" and ("keypad" not in self.answers or self._last_topic not in DIGIT_TOPICS):
            topic = self._last_topic  # no keys for this question: says it again
        key = topic if topic in self.answers else "*"
        lines = self.answers.get(key)
        if topic is None or not lines:
            return False
        i = self._used.get(key, 0)
        self._used[key] = i + 1
        return lines[min(i, len(lines) - 1)]

    def render(self, line: str | None) -> list[Step]:
        if line is None:
            return [Silence(7.0)]
        if line.startswith("#"):
            return [Dtmf(line[1:])]
        return [Utterance(text=line, engine=self.engine, voice=self.voice, snr_db=self.snr_db)]

    async def decide(self, pcm: np.ndarray) -> list[Step] | None:
        text = (await asyncio.to_thread(self.hear, pcm)).strip() if pcm.size else ""
        if not text:
            self._silent += 1
            if self._silent >= SILENT_TURNS_BEFORE_HANGUP or self._pending_topic() == "goodbye":
                if self._pending:
                    self.heard.append(self._pending)
                return None
            return []
        self._silent = 0
        self._pending = f"{self._pending} {text}".strip()
        topic = self._pending_topic()
        if topic == "goodbye":
            return []  # let the agent finish (a failed hand-over offers more); hang up on silence
        line = self.line_for(topic)
        if topic not in ("again", "keypad", "presence", None):
            self._last_topic = topic
        if line is False:
            return []  # no question yet (e.g. a pause inside a longer prompt): keep listening
        self.heard.append(self._pending)
        self._pending = ""
        self._turns += 1
        return None if self._turns > self.max_turns else self.render(line)  # type: ignore[arg-type]

    def _pending_topic(self) -> str | None:
        return topic_of(self._pending) if self._pending else None
