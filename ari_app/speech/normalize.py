"""Text normalisation for reading aloud on the phone.

``normalize_for_speech("Your total is $42.50, due 11/21/2026 at 2:30 pm.")`` ->
"Your total is forty-two dollars and fifty cents, due November twenty-first twenty twenty-six at
two thirty p m."

Pure functions, no state. Numbers become words with num2words; the rules here decide *how* a
person on the phone would say each kind of number (money, time, date, digit string, ordinal).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from num2words import num2words

MONTHS = [
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
]  # fmt: skip
_MONTH_ABBR = {m[:3].lower(): m for m in MONTHS}
_DIGIT_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]

# Abbreviations read in full. Matched case-sensitively as whole words (with their dot).
ABBREVIATIONS = {
    "Mr.": "Mister", "Mrs.": "Missus", "Ms.": "Miz", "Dr.": "Doctor", "Jr.": "Junior", "Sr.": "Senior",
    "St.": "Street", "Ave.": "Avenue", "Rd.": "Road", "Blvd.": "Boulevard", "Apt.": "Apartment",
    "Ste.": "Suite", "Dept.": "Department", "approx.": "approximately", "e.g.": "for example",
    "i.e.": "that is", "etc.": "et cetera", "vs.": "versus", "min.": "minutes", "mins": "minutes",
    "hrs": "hours", "hr": "hour", "Inc.": "Incorporated", "Ltd.": "Limited",
    "Mon.": "Monday", "Tue.": "Tuesday", "Wed.": "Wednesday", "Thu.": "Thursday", "Fri.": "Friday",
    "Sat.": "Saturday", "Sun.": "Sunday", "ASAP": "as soon as possible", "FAQ": "F A Q",
}  # fmt: skip


def cardinal(n: int) -> str:
    """42 -> "forty-two"; 1250 -> "one thousand two hundred and fifty" (no commas: they'd be pauses)."""
    return num2words(n).replace(",", "")


def ordinal(n: int) -> str:
    return num2words(n, to="ordinal").replace(",", "")


def year(n: int) -> str:
    """2026 -> "twenty twenty-six", 2005 -> "two thousand and five", 1999 -> "nineteen ninety-nine"."""
    return num2words(n, to="year").replace(",", "")


def digits(s: str, group_sep: str = ", ") -> str:
    """Read a digit string one digit at a time; non-digits (dashes, spaces, dots) become group pauses.

    An ungrouped run longer than 4 digits is grouped in threes (the last group takes 4 rather than
    leave one digit alone), the way people read account numbers back.
    """
    groups = [g for g in re.split(r"\D+", s) if g]
    if len(groups) == 1 and len(groups[0]) > 4:
        run, groups = groups[0], []
        while len(run) > 4:
            groups.append(run[:3])
            run = run[3:]
        groups.append(run)
    return group_sep.join(" ".join(_DIGIT_WORDS[int(d)] for d in g) for g in groups)


def _money(m: re.Match[str]) -> str:
    whole = int(m.group("whole").replace(",", ""))
    cents = int((m.group("cents") or "0").ljust(2, "0")[:2])
    scale = m.group("scale")
    if scale:  # "$2.5 million" -> "two point five million dollars"
        amount = m.group("whole").replace(",", "") + (f".{m.group('cents')}" if m.group("cents") else "")
        return f"{_decimal(amount)} {scale.lower()} dollars"
    parts = []
    if whole or not cents:
        parts.append(f"{cardinal(whole)} dollar{'' if whole == 1 else 's'}")
    if cents:
        parts.append(f"{cardinal(cents)} cent{'' if cents == 1 else 's'}")
    return " and ".join(parts)


def _decimal(s: str) -> str:
    whole, _, frac = s.partition(".")
    out = cardinal(int(whole or "0"))
    if frac:
        out += " point " + " ".join(_DIGIT_WORDS[int(d)] for d in frac)
    return out


def _clock(hour: int, minute: int) -> str:
    if minute == 0:
        return cardinal(hour)
    if minute < 10:
        return f"{cardinal(hour)} oh {cardinal(minute)}"
    return f"{cardinal(hour)} {cardinal(minute)}"


def _time(m: re.Match[str]) -> str:
    hour, minute = int(m.group("h")), int(m.group("m") or 0)
    ampm = m.group("ampm")
    if hour > 23 or minute > 59:
        return m.group(0)
    if ampm:
        letters = ampm.replace(".", "").lower()
        # "p.m." swallows a sentence's full stop: give it back when a sentence really ends there.
        rest = m.string[m.end() :]
        stop = "." if ampm.endswith(".") and (not rest.strip() or re.match(r"\s+[A-Z]", rest)) else ""
        return f"{_clock(hour, minute)} {letters[0]} m{stop}"
    if minute == 0 and hour < 24:
        return f"{cardinal(hour)} hundred" if hour >= 13 else f"{cardinal(hour)} o'clock"
    return _clock(hour, minute)


def _date_words(month: int, day: int, yr: str | None) -> str:
    out = f"{MONTHS[month - 1]} {ordinal(day)}"
    if yr:
        y = int(yr)
        out += f" {year(y + 2000 if y < 100 else y)}"
    return out


def _numeric_date(m: re.Match[str]) -> str:
    if m.group("iso_y"):
        y, mo, d = m.group("iso_y"), int(m.group("iso_m")), int(m.group("iso_d"))
    else:  # US order: month/day/year
        y, mo, d = m.group("y"), int(m.group("m")), int(m.group("d"))
    if not (1 <= mo <= 12 and 1 <= d <= 31):
        return m.group(0)
    return _date_words(mo, d, y)


def _named_date(m: re.Match[str]) -> str:
    month = _MONTH_ABBR[m.group("mon").lower().rstrip(".")[:3]]
    day = int(m.group("d"))
    if not 1 <= day <= 31:
        return m.group(0)
    return _date_words(MONTHS.index(month) + 1, day, m.group("y"))


def _ordinal(m: re.Match[str]) -> str:
    return ordinal(int(m.group(1)))


def _number(m: re.Match[str]) -> str:
    s = m.group(0).replace(",", "")
    if "." in s:
        return _decimal(s)
    if len(s) > 1 and s.startswith("0"):  # "007", "0800": a code, not a quantity
        return digits(s)
    return cardinal(int(s))


def _spell(m: re.Match[str]) -> str:
    """Mixed letters and digits ("AB12C", a booking reference) are read character by character."""
    return " ".join(_DIGIT_WORDS[int(c)] if c.isdigit() else c.upper() for c in m.group(0))


_MONTH_NAMES = r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sept?(?:ember)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"

# Order matters: the specific shapes first, plain numbers last.
_RULES: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (
        re.compile(
            r"\b(?P<iso_y>\d{4})-(?P<iso_m>\d{2})-(?P<iso_d>\d{2})\b|\b(?P<m>\d{1,2})/(?P<d>\d{1,2})(?:/(?P<y>\d{4}|\d{2}))?\b"
        ),
        _numeric_date,
    ),
    (
        re.compile(
            rf"\b(?P<mon>{_MONTH_NAMES})\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s+(?P<y>\d{{4}})\b)?"
        ),
        _named_date,
    ),
    (
        re.compile(
            r"\b(?P<h>\d{1,2})(?::(?P<m>\d{2}))?\s*(?P<ampm>[AaPp]\.?[Mm]\.?)(?![A-Za-z])|\b(?P<h2>\d{1,2}):(?P<m2>\d{2})\b"
        ),
        lambda m: _time_any(m),
    ),
    (
        re.compile(
            r"\$\s?(?P<whole>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<cents>\d{1,2}))?(?:\s+(?P<scale>million|billion|thousand|Million|Billion|Thousand))?\b"
        ),
        _money,
    ),
    (re.compile(r"(\d+(?:\.\d+)?)\s?%"), lambda m: f"{_decimal(m.group(1))} percent"),
    # Phone numbers: (555) 123-4567, 555-123-4567, +1 555 123 4567, 555.123.4567
    (
        re.compile(r"(?:\+\d{1,3}[\s.-]?)?(?:\(\d{3}\)\s?|\b\d{3}[\s.-])\d{3}[\s.-]\d{4}\b"),
        lambda m: digits(m.group(0)),
    ),
    (re.compile(r"\b(\d+)(?:st|nd|rd|th)\b"), _ordinal),
    (re.compile(r"\b(?=[A-Z0-9]*\d)(?=[A-Z0-9]*[A-Z])[A-Z0-9]{4,}\b"), _spell),
    (re.compile(r"\b\d{5,}\b"), lambda m: digits(m.group(0))),
    (re.compile(r"\b\d{1,3}(?:,\d{3})+(?:\.\d+)?\b|\b\d+(?:\.\d+)?\b"), _number),
]


def _time_any(m: re.Match[str]) -> str:
    if m.group("h2") is not None:
        h, mi = int(m.group("h2")), int(m.group("m2"))
        if h > 23 or mi > 59:
            return m.group(0)
        return _clock(h, mi) if mi else (f"{cardinal(h)} hundred" if h >= 13 else f"{cardinal(h)} o'clock")
    return _time(m)


_ABBR = re.compile(
    "|".join(rf"(?<![\w.]){re.escape(k)}" + (r"(?!\w)" if k.endswith(".") else r"\b") for k in ABBREVIATIONS)
)


def normalize_for_speech(text: str) -> str:
    """Rewrite numbers, amounts, times, dates, codes and abbreviations as words a TTS reads well."""
    text = _ABBR.sub(lambda m: ABBREVIATIONS[m.group(0)], text)
    text = re.sub(r"\b(?:No|Nr)\.\s?(?=\d)|#\s?(?=\d)", "number ", text)
    for pattern, replace in _RULES:
        text = pattern.sub(replace, text)
    return re.sub(r"[ \t]+", " ", text).strip()
