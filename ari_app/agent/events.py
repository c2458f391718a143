"""agent: everything the caller does, as one stream of typed events, in the order it happened.

The listener produces them (speech and keys), exactly one consumer takes them: the floor
(``floor.py``), which alone decides what an event means while a prompt plays. Every event is
stamped with wire time: the arrival of the packet (or DTMF event) that caused it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ari_app.speech.barge_in import BargeIn, FalseBargeIn, PossibleBargeIn
from ari_app.speech.endpointing import NoInput, SpeechStarted
from ari_app.speech.recognition import UserTurn


@dataclass(frozen=True)
class Digits:
    """One key entry, grouped (terminator, maximum length or inter-digit pause)."""

    digits: str
    first_at: float
    last_at: float


@dataclass(frozen=True)
class HungUp:
    """The caller's media stream ended: nothing more will arrive."""

    at: float


CallerEvent = SpeechStarted | UserTurn | PossibleBargeIn | BargeIn | FalseBargeIn | Digits | NoInput | HungUp
# What the conversation waits for between prompts; the rest only matters while one plays.
CallerInputEvent = UserTurn | Digits | NoInput | HungUp
Emit = Callable[[CallerEvent], None]

__all__ = [
    "BargeIn",
    "CallerEvent",
    "CallerInputEvent",
    "Digits",
    "Emit",
    "FalseBargeIn",
    "HungUp",
    "NoInput",
    "PossibleBargeIn",
    "SpeechStarted",
    "UserTurn",
]
