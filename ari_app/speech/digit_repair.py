"""speech: a digit string that came out one digit short or one too long, repaired on the audio.

Why: asked for a 10-digit phone number, tiny.en on a phone line most often loses exactly one
digit: a zero said "oh", or one of a double digit ("two two" -> "2"), or adds one. The caller
said the right number; the agent then asks again and again (the independent evaluation: a
grouped number taken on 5 of 22 attempts for one voice). When the open question wants ``L``
digits and no hypothesis has ``L`` but one has ``L - 1`` or ``L + 1``, every string one edit
away that could explain it (a zero or a neighbour's double inserted anywhere; any one digit
dropped) is force-aligned with the encoded audio (closed_set.score, batched) and the best is
offered as one more hypothesis when it wins clearly. The dialogue reads a number taken from
such a hypothesis back to the caller before using it (dialog/filling.py ``unsure_number``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ari_app.speech import closed_set

MIN_DIGITS = 5  # shorter strings: a reprompt costs less than a wrong guess
_WORDS = {"zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3", "four": "4",
          "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9"}  # fmt: skip
_REPEAT = {"double": 2, "triple": 3}
_TOKEN = re.compile(r"[a-z]+|\d")


def digits_in(text: str) -> str:
    """The digits a transcript spells, in order ('5 5 1, double two, oh 3' -> '551220 3')."""
    out: list[str] = []
    repeat = 1
    for tok in _TOKEN.findall(text.lower()):
        if tok in _REPEAT:
            repeat = _REPEAT[tok]
            continue
        d = tok if tok.isdigit() else _WORDS.get(tok)
        if d is not None:
            out.append(d * repeat)
        repeat = 1
    return "".join(out)


def candidates(heard: str, want: int) -> list[str]:
    """Strings of ``want`` digits one edit from ``heard``: a digit dropped when it has one too
    many; when one short, a zero or a double of a neighbour inserted at any place (what tiny.en
    loses: 'oh', and one of 'two two')."""
    out: set[str] = set()
    if len(heard) == want + 1:
        out = {heard[:i] + heard[i + 1 :] for i in range(len(heard))}
    elif len(heard) == want - 1:
        for i in range(len(heard) + 1):
            for d in {"0", heard[i - 1 : i], heard[i : i + 1]} - {""}:
                out.add(heard[:i] + d + heard[i:])
    return sorted(out)


def repair(
    model: Any, tokenizer: Any, encoded: Any, frames: int, hypotheses: Sequence[str], want: int
) -> closed_set.Pick | None:
    """The repaired digit string (spaced, '5 5 1 ...') the audio supports clearly, or None when
    a hypothesis already has ``want`` digits or none is one digit off."""
    if want < MIN_DIGITS:
        return None
    found = [digits_in(h) for h in hypotheses]
    if any(len(d) == want for d in found):
        return None
    near = next((d for d in found if abs(len(d) - want) == 1), None)
    if near is None:
        return None
    texts = [" ".join(c) for c in candidates(near, want)]
    return closed_set.best_clear(closed_set.score(model, tokenizer, encoded, frames, texts))
