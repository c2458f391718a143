"""Spoken-form normalisation shared by the extractors: number words -> digits.

ASR hands us lower-case words ("the twenty third at two pm"); text2num turns cardinals and
ordinals into digits ("the 23rd at 2 pm") and we add what it misses: "a dozen", "oh" as zero.
"""

from __future__ import annotations

import re

from text_to_num import alpha2digit

_PUNCT = re.compile(r"[^\w\s$.:/'-]")
_SPACES = re.compile(r"\s+")
_EXTRA = {"a dozen": "12", "dozen": "12", "a couple of": "2", "a couple": "2"}


def clean(text: str) -> str:
    """Lower case, unify quotes, drop punctuation that never carries meaning for us."""
    text = text.lower().replace("\u2019", "'").replace(",", " ")
    text = _PUNCT.sub(" ", text)
    # A sentence-final full stop is ASR punctuation, not a decimal point.
    text = re.sub(r"(?<!\d)\.|\.(?!\d)", " ", text)
    return _SPACES.sub(" ", text).strip()


def numerals(text: str) -> str:
    """``clean`` text with number words as digits (threshold 0: "one" -> "1" too)."""
    text = clean(text)
    for phrase, digit in _EXTRA.items():
        text = re.sub(rf"\b{phrase}\b", digit, text)
    return alpha2digit(text, "en", threshold=0)
