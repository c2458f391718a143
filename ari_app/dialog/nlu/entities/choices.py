"""Picking one option from a list: fuzzy match on the words, or an ordinal ("the second one")."""

from __future__ import annotations

import re
from collections.abc import Sequence

from rapidfuzz import fuzz, utils

from ari_app.dialog.nlu.entities.spoken import clean
from ari_app.dialog.nlu.types import Entity

_ORDINALS = {
    "first": 0, "1st": 0, "second": 1, "2nd": 1, "third": 2, "3rd": 2, "fourth": 3, "4th": 3,
    "fifth": 4, "5th": 4, "sixth": 5, "6th": 5, "last": -1, "final": -1,
}  # fmt: skip
_NUMBER_PICK = {"one": 0, "two": 1, "three": 2, "four": 3, "five": 4, "six": 5}
_ORDINAL_PICK = re.compile(r"\b(?:the\s+)?(" + "|".join(_ORDINALS) + r")(?:\s+(?:one|option|choice|item))?\b")
_NUMBER_PICK_RE = re.compile(r"\b(?:number|option|choice)\s+(one|two|three|four|five|six|[1-6])\b")
_MIN_SCORE = 70.0
_STOP = {"the", "a", "an", "at", "on", "in", "of", "and", "or", "to", "for", "please", "one"}


def _score(utterance: str, option: str) -> float:
    """0..100: whole-phrase similarity, or a distinctive word of the option said on its own."""
    whole = fuzz.WRatio(utterance, option, processor=utils.default_process)
    said = [w for w in utterance.split() if w not in _STOP and len(w) >= 3]
    words = [w for w in clean(option).split() if w not in _STOP and len(w) >= 3]
    word_hit = max((fuzz.ratio(a, b) for a in said for b in words), default=0.0)
    return max(whole, 0.95 * word_hit)


def extract_choice(text: str, choices: Sequence[str]) -> Entity | None:
    """The canonical option the caller meant, by name first, then by position."""
    if not choices:
        raise ValueError("extract(..., 'choice') needs choices=[...] (the options offered)")
    norm = clean(text)
    scores = [_score(norm, option) for option in choices]
    ranked = sorted(range(len(choices)), key=lambda i: -scores[i])
    top = ranked[0]
    tie = len(ranked) > 1 and scores[ranked[1]] >= scores[top] - 2
    best = (choices[top], scores[top] * (0.6 if tie else 1.0))
    # An option named in the words beats a positional reading of them.
    if best and best[1] >= 85:
        return Entity("choice", best[0], text.strip(), round(best[1] / 100, 3))
    m = _NUMBER_PICK_RE.search(norm)
    index = None
    if m:
        token = m.group(1)
        index = int(token) - 1 if token.isdigit() else _NUMBER_PICK[token]
    else:
        m = _ORDINAL_PICK.search(norm)
        if m:
            index = _ORDINALS[m.group(1)]
    if index is not None and -len(choices) <= index < len(choices):
        return Entity("choice", choices[index], text.strip(), 0.9)
    if best and best[1] >= _MIN_SCORE:
        return Entity("choice", best[0], text.strip(), round(best[1] / 100, 3))
    return None
