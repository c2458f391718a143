"""Embedded understanding: intent classification + spoken-form entity extraction.

Skeleton: the real classifier and extractors land in sibling modules; this keeps the
public entry point importable for the dialogue engine from the start.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ari_app.dialog.nlu.types import Entity, IntentScore, Parse

__all__ = ["Entity", "IntentScore", "Parse", "Understanding", "build_understanding"]


class Understanding:
    """Intents + entities for one application (fit once with the flows' examples)."""

    def __init__(self) -> None:
        self._examples: dict[str, list[str]] = {}

    def fit(self, examples: dict[str, list[str]], negatives: Sequence[str] = ()) -> None:
        self._examples = {k: list(v) for k, v in examples.items()}

    def parse(self, text: str) -> Parse:
        words = set(text.lower().split())
        scores = []
        for name, exs in self._examples.items():
            vocab = {w for e in exs for w in e.lower().split()}
            overlap = len(words & vocab) / max(len(words), 1)
            scores.append(IntentScore(name, overlap))
        scores.sort(key=lambda s: s.score, reverse=True)
        oos = not scores or scores[0].score < 0.5
        return Parse(text=text, intents=[] if oos else scores, out_of_scope=oos, entities=[])

    def extract(
        self,
        text: str,
        entity_type: str,
        choices: Sequence[str] | None = None,
        now: datetime | None = None,
    ) -> Entity | None:
        return None


def build_understanding(settings: Any | None = None) -> Understanding:
    return Understanding()
