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
# Th-fronting ("free thirty" for "three thirty", "firty"): ASR writes the word it heard, and
# several accents say "th" as "f" or "t". Only beside another number or a clock word, so a
# "free consultation" stays free.
_NUMBER_WORD = re.compile(
    r"^(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|"
    r"thirty|forty|fifty|o'?clock|am|pm)$"
)
_TH_FRONTED = {"firty": "thirty", "tirty": "thirty", "fird": "third", "tird": "third",
               "firteen": "thirteen", "fourty": "forty"}  # fmt: skip


def _unfront(text: str) -> str:
    words = [_TH_FRONTED.get(w, w) for w in text.split()]
    for i, w in enumerate(words):
        if w in ("free", "tree"):
            after = " ".join(words[i + 1 : i + 3])
            near = words[max(0, i - 1) : i] + words[i + 1 : i + 2]
            if any(_NUMBER_WORD.match(n) for n in near) or re.match(r"(?:[ap] m|o clock)\b", after):
                words[i] = "three"
    return " ".join(words)


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
    text = _unfront(text)
    for phrase, digit in _EXTRA.items():
        text = re.sub(rf"\b{phrase}\b", digit, text)
    return alpha2digit(text, "en", threshold=0)
