"""Masking what must never reach logs or transcripts: sensitive slot values and card numbers."""

from __future__ import annotations

import re
from typing import Any

_DIGIT_RUN = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")


def mask(value: Any) -> str:
    """``4111111111111111`` -> ``****1111``; short secrets (PINs) lose every digit."""
    text = str(value)
    digits = re.sub(r"\D", "", text)
    if len(digits) >= 8:
        return "****" + digits[-4:]
    return "****"


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def redact_text(text: str) -> str:
    """Replace Luhn-valid 13-19 digit runs (card numbers, spaces/dashes allowed) with ``****1234``."""

    def repl(m: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", m.group(0))
        if 13 <= len(digits) <= 19 and luhn_ok(digits):
            return "****" + digits[-4:]
        return m.group(0)

    return _DIGIT_RUN.sub(repl, text)


def redact(text: str | None, secrets: list[str] | tuple[str, ...] = ()) -> str:
    """Mask known secret values (sensitive slots' raw text/digits) and any card number in ``text``."""
    if not text:
        return text or ""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, mask(secret))
    return redact_text(text)


def redact_slots(slots: dict[str, Any], sensitive: set[str]) -> dict[str, Any]:
    return {k: (mask(v) if k in sensitive and v is not None else v) for k, v in slots.items()}
