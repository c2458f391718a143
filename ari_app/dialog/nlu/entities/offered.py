"""dialog/nlu: picking one of the times we offered, from what ASR really writes.

Offered 9:00, 11:30 and 2:00 PM, callers say "eleven thirty" and Whisper writes ``11:30``,
``1130.``, ``11-30.``, ``11th 30.`` or ``11 30``; "two" means the 2 PM one. Matching against the
offers first (rather than parsing a free time and hoping it is one of them) is what turns those
forms into the right choice.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import time

from ari_app.dialog.nlu.entities.dates import find_time, hour24
from ari_app.dialog.nlu.entities.spoken import numerals
from ari_app.dialog.nlu.types import Entity

_ORDINAL = re.compile(r"\b(\d{1,2})(?:st|nd|rd|th)\b")
_JOINED = re.compile(r"\b(\d{1,2})\s*[-–.]\s*(\d{2})\b")


def _offer(option: str) -> time | None:
    m = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*", option)
    return time(int(m.group(1)), int(m.group(2))) if m and int(m.group(1)) < 24 else None


def asr_time_text(text: str) -> str:
    """Number words as digits, ordinal suffixes dropped, ``11-30``/``11.30`` as ``11:30``."""
    norm = numerals(text.lower())
    norm = _ORDINAL.sub(r"\1", norm)
    return _JOINED.sub(r"\1:\2", norm)


def match_offered_time(text: str, options: Sequence[str]) -> str | None:
    """The offered ``HH:MM`` option the caller named, or None when none (or several) fit."""
    offers = {o: t for o in options if (t := _offer(o)) is not None}
    if not offers:
        return None
    norm = asr_time_text(text)
    found = find_time(norm)
    if found is not None and isinstance(found.value, time):
        want = found.value
        exact = [o for o, t in offers.items() if t == want]
        if exact:
            return exact[0]
        # "at two" was read as 14:00, "at nine" as 09:00: also accept the other half of the day.
        other = time((want.hour + 12) % 24, want.minute)
        twelve = [o for o, t in offers.items() if t == other]
        if len(twelve) == 1 and not re.search(r"\b(am|pm|a\.m|p\.m|morning|afternoon|evening)\b", norm):
            return twelve[0]
        # "the eleven thirty one" comes out as "11 31": a minute off an offer is that offer.
        near = [o for o, t in offers.items() if t.hour == want.hour and abs(t.minute - want.minute) <= 1]
        if len(near) == 1:
            return near[0]
    # A bare hour or hour+minute in any spelling ("11", "1130", "11 30"): the offers decide.
    groups = re.findall(r"\d+", norm)
    if not groups or len("".join(groups)) > 4:
        return None
    joined = "".join(groups)
    hits = [
        o
        for o, t in offers.items()
        if joined in {f"{h}{t.minute:02d}" for h in (t.hour, t.hour % 12 or 12)}
        or (t.minute == 0 and joined in {str(t.hour), str(t.hour % 12 or 12)})
    ]
    return hits[0] if len(hits) == 1 else None


def said_time(text: str) -> Entity | None:
    """A time not among the offers, read anyway so the caller hears what is available: "1130,
    please", "can I do four instead?" (one bare hour is a time: 16:00)."""
    norm = asr_time_text(text)
    found = find_time(norm)
    t = found.value if found is not None and isinstance(found.value, time) else None
    numbers = re.findall(r"\d+", norm)
    if t is None and len(numbers) == 1 and len(numbers[0]) in (3, 4):
        hour, minute = int(numbers[0][:-2]), int(numbers[0][-2:])
        t = hour24(hour, minute, None) if minute < 60 else None
    if t is None and len(numbers) == 1 and 1 <= int(numbers[0]) <= 12:
        t = hour24(int(numbers[0]), 0, None)
    return Entity("time", f"{t.hour:02d}:{t.minute:02d}", text, 0.6) if t else None
