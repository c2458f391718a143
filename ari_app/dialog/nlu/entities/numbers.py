"""Digit strings, amounts of money and plain numbers in spoken form."""

from __future__ import annotations

import re
from decimal import Decimal

from text_to_num import alpha2digit

from ari_app.dialog.nlu.entities.spoken import clean, numerals
from ari_app.dialog.nlu.types import Entity

_DIGIT_WORDS = {
    "zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
}  # fmt: skip
_REPEAT = {"double": 2, "triple": 3}
# What Whisper writes for a digit it heard as a word: counted only between two digits or before
# the first ("For 2 3", "5 to 7"), never inside ordinary words ("I want to", "for my account").
_SOUND_ALIKE = {
    "for": "4",
    "to": "2",
    "too": "2",
    "won": "1",
    "ate": "8",
    "tree": "3",
    "free": "3",
    "of": "0",
}  # "1 of 4 5 2": "one oh four five two"
_FILLERS = {"uh", "um", "er", "ah", "erm", "hmm"}
_TENS_WORDS = re.compile(
    r"^(ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|"
    r"twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred|thousand)$"
)


def extract_digits(text: str) -> Entity | None:
    """Longest run of spoken digits: "nine oh two one oh" -> "90210", "triple five" -> "555"."""
    tokens = clean(text).replace("-", " ").split()
    runs: list[tuple[str, bool]] = []  # (digits, used compound number words)
    current, compound, repeat, i = "", False, 1, 0
    while i < len(tokens):
        tok = tokens[i]
        if tok in _REPEAT and i + 1 < len(tokens):
            repeat = _REPEAT[tok]
            i += 1
            continue
        multiplier_next = i + 1 < len(tokens) and tokens[i + 1] in ("hundred", "thousand")
        if tok in _FILLERS and current:
            i += 1  # "one two uh three four" is still one number
            continue
        if tok.isdigit():
            piece = tok
        elif tok in _SOUND_ALIKE and _next_is_digit(tokens, i) and (current or i == 0):
            piece = _SOUND_ALIKE[tok]
        elif (
            tok in _DIGIT_WORDS
            and not multiplier_next
            and (tok not in ("oh", "o") or current or _next_is_digit(tokens, i))
        ):
            piece = _DIGIT_WORDS[tok]
        elif _TENS_WORDS.match(tok) or (tok in _DIGIT_WORDS and multiplier_next):
            # "five five five twelve thirty four": let text2num read the compound run.
            j = i
            while j < len(tokens) and (_TENS_WORDS.match(tokens[j]) or tokens[j] in _DIGIT_WORDS):
                if j > i and tokens[j] in _DIGIT_WORDS and not _TENS_WORDS.match(tokens[j - 1]):
                    break
                j += 1
            piece = alpha2digit(" ".join(tokens[i:j]), "en", threshold=0).replace(" ", "")
            if not piece.isdigit():
                piece = ""
            compound, i = True, j - 1
        else:
            piece = ""
        if piece:
            current += piece[0] * (repeat - 1) + piece
        elif current:
            runs.append((current, compound))
            current, compound = "", False
        repeat = 1
        i += 1
    if current:
        runs.append((current, compound))
    if not runs:
        return None
    digits, used_compound = max(runs, key=lambda r: len(r[0]))
    # Compound words ("twenty one") are ambiguous as digit strings ("21" or "201"?).
    confidence = 0.75 if used_compound else (0.95 if len(digits) > 1 else 0.7)
    return Entity("digits", digits, text.strip(), confidence)


def _next_is_digit(tokens: list[str], i: int) -> bool:
    return i + 1 < len(tokens) and (
        tokens[i + 1].isdigit() or tokens[i + 1] in _DIGIT_WORDS or tokens[i + 1] in _REPEAT
    )


_CURRENCY = r"(?:dollars?|bucks?|usd)"
_CENTS = r"(?:cents?)"
_SYMBOL_AMOUNT = re.compile(r"\$\s?(\d[\d,]*(?:\.\d{1,2})?)")
_DOLLARS_AND_CENTS = re.compile(rf"\b(\d+)\s+{_CURRENCY}(?:\s+(?:and\s+)?(\d{{1,2}})(?:\s+{_CENTS})?)?\b")
_ONLY_CENTS = re.compile(rf"\b(\d{{1,2}})\s+{_CENTS}\b")
_TWO_PART = re.compile(r"\b(\d{1,4})\s+(\d{2})\b")
_DECIMAL = re.compile(r"\b(\d+(?:\.\d{1,2})?)\b")


def _money(dollars: str, cents: str | None = None) -> str:
    value = Decimal(dollars.replace(",", ""))
    if cents:
        value += Decimal(int(cents)) / 100
    return f"{value:.2f}"


def extract_amount(text: str) -> Entity | None:
    """Money as a decimal string: "forty dollars and fifty cents" -> "40.50"."""
    raw = text.strip()
    m = _SYMBOL_AMOUNT.search(raw)
    if m:
        return Entity("amount", _money(m.group(1)), m.group(0), 0.97)
    norm = numerals(raw)
    m = _DOLLARS_AND_CENTS.search(norm)
    if m:
        return Entity("amount", _money(m.group(1), m.group(2)), raw, 0.95)
    m = _ONLY_CENTS.search(norm)
    if m:
        return Entity("amount", _money("0", m.group(1)), raw, 0.9)
    m = _TWO_PART.search(norm)
    if m and 10 <= int(m.group(2)) <= 99:
        # "forty fifty" is 40.50 more often than not, but could be two numbers: say so.
        return Entity("amount", _money(m.group(1), m.group(2)), raw, 0.6)
    m = _DECIMAL.search(norm)
    if m:
        has_currency = re.search(_CURRENCY, norm) is not None
        return Entity("amount", _money(m.group(1)), raw, 0.9 if has_currency else 0.75)
    return None


_INTEGER = re.compile(r"(?<![\d.])(\d+)(?!\d|st\b|nd\b|rd\b|th\b|[.:/]\d)")


def extract_number(text: str) -> Entity | None:
    """First cardinal number: "a hundred and five" -> 105 (ordinals are not numbers here)."""
    norm = numerals(text)
    m = _INTEGER.search(norm)
    if not m:
        return None
    return Entity("number", int(m.group(1)), text.strip(), 0.9)
