"""Person names from speech: carrier phrases + nameparser, and spelled-out names."""

from __future__ import annotations

import re

from nameparser import HumanName

from ari_app.dialog.nlu.entities.spoken import clean
from ari_app.dialog.nlu.types import Entity

_CARRIERS = re.compile(
    r"\b(?:my name is|my name's|name is|the name is|this is|it's|it is|i'm|i am|call me|"
    r"you can call me|speaking with|it's called)\s+(.+)"
)
_TRAILING = re.compile(r"\s+(?:speaking|here|calling|thanks|thank you|please)\b.*$")
_NATO = {
    w: w[0]
    for w in (
        "alpha alfa bravo charlie delta echo foxtrot golf hotel india juliet juliett kilo lima "
        "mike november oscar papa quebec romeo sierra tango uniform victor whiskey xray "
        "yankee zulu"
    ).split()
}
# "j as in juliet", "j for juliet", "j like juliet": the word after the cue confirms the letter.
_LETTER_AS_IN = re.compile(r"\b([a-z])\s+(?:as in|for|like)\s+[a-z]+\b")
_NOT_NAMES = {"yes", "no", "yeah", "nope", "hello", "hi", "um", "uh", "the", "a", "and", "calling"}


def spelled_letters(text: str) -> str | None:
    """Letters of a spelled word ("j o h n", "j as in juliet o h n") or None if not spelled."""
    norm = _LETTER_AS_IN.sub(r"\1", clean(text)).replace("-", " ")
    letters: list[str] = []
    for tok in norm.split():
        if len(tok) == 1 and tok.isalpha():
            letters.append(tok)
        elif tok in _NATO:
            letters.append(_NATO[tok])
        elif tok in ("space", "then", "and") and letters:
            continue
        elif letters:
            break
    return "".join(letters) if len(letters) >= 2 else None


def extract_name(text: str) -> Entity | None:
    """A capitalised person name; confidence says how sure (spelled > carrier > bare)."""
    spelled = spelled_letters(text)
    if spelled:
        return Entity("name", spelled.capitalize(), text.strip(), 0.95)
    norm = clean(text)
    m = _CARRIERS.search(norm)
    candidate, confidence = (m.group(1), 0.85) if m else (norm, 0.6)
    candidate = _TRAILING.sub("", candidate).strip()
    words = [w for w in candidate.split() if w not in _NOT_NAMES]
    if not words or len(words) > 4 or any(any(c.isdigit() for c in w) for w in words):
        return None
    parsed = HumanName(" ".join(words))
    parsed.capitalize(force=True)
    name = " ".join(p for p in (parsed.first, parsed.middle, parsed.last) if p) or str(parsed)
    return Entity("name", name, text.strip(), confidence) if name else None
