"""The understanding contract shared with the dialogue engine: what a parse looks like."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

ENTITY_TYPES = ("date", "time", "datetime", "digits", "amount", "yes_no", "name", "choice", "number")


@dataclass(frozen=True)
class IntentScore:
    name: str
    score: float  # 0..1 calibrated-ish confidence


@dataclass(frozen=True)
class Entity:
    # "date" | "time" | "datetime" | "digits" | "amount" | "yes_no" | "name" | "choice" | "number"
    type: str
    # date/time: ISO string (YYYY-MM-DD / HH:MM / YYYY-MM-DDTHH:MM); digits: str of digits;
    # amount: str decimal "40.50"; yes_no: "yes"|"no"; name: str; choice: the canonical option;
    # number: int
    value: Any
    text: str  # the span of caller text it came from
    confidence: float
    correction: bool = False  # e.g. "yes but ..." / "no, ..." carries a correction


@dataclass(frozen=True)
class Parse:
    text: str
    intents: list[IntentScore]  # sorted best first; empty when nothing in scope
    out_of_scope: bool
    entities: list[Entity] = field(default_factory=list)


class IntentClassifier(Protocol):
    def fit(self, examples: dict[str, list[str]], negatives: Sequence[str] = ()) -> None: ...

    def classify(self, text: str) -> tuple[list[IntentScore], bool]: ...  # (ranked, out_of_scope)


class EntityExtractor(Protocol):
    def extract(
        self,
        text: str,
        entity_type: str,
        *,
        choices: Sequence[str] | None = None,
        now: datetime | None = None,
    ) -> Entity | None: ...
