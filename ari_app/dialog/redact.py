"""Masking what must never reach logs or transcripts: sensitive slot values, card numbers
(digits or spelled out: "four one one one ..."), and social security numbers."""

from __future__ import annotations

import re
from typing import Any

# A run inside a word is part of an identifier, not a number said or typed: a session id
# (hex) such as 20dfbb1402324787875b... holds a Luhn-valid 13-digit run now and then.
_DIGIT_RUN = re.compile(r"(?<![\dA-Za-z])(?:\d[ -]?){12,18}\d(?![\dA-Za-z])")
_SSN = re.compile(r"(?<!\d)\d{3}[- ]\d{2}[- ]\d{4}(?!\d)")
_SPOKEN_DIGIT = {"zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3", "four": "4",
                 "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9"}  # fmt: skip
_SPOKEN_RUN = re.compile(r"\b(?:(?:double\s+)?(?:" + "|".join(_SPOKEN_DIGIT) + r")\b[\s,.-]*){9,}", re.I)
LAST_DIGITS_FROM = 12  # only card-length numbers keep their last 4 (a date of birth keeps nothing)


def mask(value: Any) -> str:
    """``4111111111111111`` -> ``****1111``; shorter secrets (PINs, dates of birth) lose every digit."""
    text = str(value)
    digits = re.sub(r"\D", "", text)
    if len(digits) >= LAST_DIGITS_FROM:
        return "****" + digits[-4:]
    return "****"


def _spoken_digits(words: str) -> str:
    out, double = [], False
    for w in re.findall(r"[a-z]+", words.lower()):
        if w == "double":
            double = True
            continue
        d = _SPOKEN_DIGIT[w]
        out.append(d * 2 if double else d)
        double = False
    return "".join(out)


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def redact_text(text: str) -> str:
    """Replace Luhn-valid 13-19 digit runs (card numbers, spaces/dashes allowed) with ``****1234``,
    SSN-shaped numbers (123-45-6789) and spelled-out card numbers or SSNs with ``****``."""

    def repl(m: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", m.group(0))
        if 13 <= len(digits) <= 19 and luhn_ok(digits):
            return "****" + digits[-4:]
        return m.group(0)

    def spoken(m: re.Match[str]) -> str:
        digits = _spoken_digits(m.group(0))
        if (13 <= len(digits) <= 19 and luhn_ok(digits)) or len(digits) == 9:  # a card, an SSN
            return "**** "
        return m.group(0)

    text = _SSN.sub("****", _DIGIT_RUN.sub(repl, text))
    return _SPOKEN_RUN.sub(spoken, text)


def redact(text: str | None, secrets: list[str] | tuple[str, ...] = ()) -> str:
    """Mask known secret values (sensitive slots' raw text/digits) and any card number in ``text``."""
    if not text:
        return text or ""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, mask(secret))
    return redact_text(text)


def redact_slots(slots: dict[str, Any], sensitive: set[str]) -> dict[str, Any]:
    return {k: (mask(v) if k in sensitive and v is not None else v) for k, v in slots.items()}
