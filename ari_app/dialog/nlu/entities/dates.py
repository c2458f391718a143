"""Dates, times and dates of birth in spoken form.

parsedatetime handles the relative phrases ("next tuesday", "a week from today"); we add what
it gets wrong on speech: spoken ordinals ("the twenty third"), day-of-month alone ("on the
3rd"), times said as words ("two thirty pm", "quarter to five"), a prefer-future rule for
appointments and spoken years ("nineteen eighty four") for dates of birth.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import parsedatetime

from ari_app.dialog.nlu.entities.spoken import numerals
from ari_app.dialog.nlu.types import Entity

_MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_name) if m}
_MONTHS.update({m.lower(): i for i, m in enumerate(calendar.month_abbr) if m})
_MONTHS["sept"] = 9
# Month names only count next to a day number, so "may" the verb is not a month here.
_MONTH_RE = "|".join(sorted(_MONTHS, key=len, reverse=True))
_ORD = r"(\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"(?:\s+(\d{4}|\d{2}\s+\d{2}))?"
_MONTH_DAY = re.compile(rf"\b({_MONTH_RE})\s+(?:the\s+)?{_ORD}\b{_YEAR}")
# "the 12th of December 1970", and as Whisper writes it: "12th December 1970", "15th and August".
_DAY_OF_MONTH = re.compile(rf"\b(?:the\s+)?{_ORD}\s+(?:of\s+|and\s+)?({_MONTH_RE})\b{_YEAR}")
_DAY_NEXT_MONTH = re.compile(rf"\bthe\s+{_ORD}\s+of\s+(next|this)\s+month\b")
_BARE_ORDINAL = re.compile(r"\bthe\s+(\d{1,2})(?:st|nd|rd|th)\b|\b(\d{1,2})(?:st|nd|rd|th)\b")
_NUMERIC = re.compile(r"\b(\d{1,2})[/-](\d{1,2})(?:[/-](\d{2,4}))?\b")

_PERIOD = r"(am|pm|a\.m|p\.m|a m|p m|in the morning|in the afternoon|in the evening|at night|tonight)"
_CLOCK = re.compile(rf"\b(?:at\s+)?(\d{{1,2}})(?::|\.|\s+)(\d{{2}})(?:\s*{_PERIOD})?\b")
# ASR writes a spoken time on its own as "1130": only when it is the whole answer (else: a year?).
_COMPACT = re.compile(rf"^\s*(?:at\s+)?(\d{{1,2}})(\d{{2}})(?:\s*{_PERIOD})?[.\s]*$")
_HOUR = re.compile(rf"\b(?:at\s+)?(\d{{1,2}})(?:\s*o'?clock)?\s*{_PERIOD}")
_OCLOCK = re.compile(r"\b(?:at\s+)?(\d{1,2})\s*o'?clock\b")
_PAST_TO = re.compile(
    rf"\b(?:at\s+)?(half|quarter|\d{{1,2}})\s+(past|after|to|till|before)\s+(\d{{1,2}})(?:\s*{_PERIOD})?"
)
_AT_HOUR = re.compile(r"\bat\s+(\d{1,2})\b(?!\s*(?:st|nd|rd|th|/|-))")
_NAMED_TIMES = {"noon": time(12), "midday": time(12), "midnight": time(0)}
_PARTS_OF_DAY = {"morning": time(9), "afternoon": time(14), "evening": time(18), "tonight": time(19)}


@dataclass(frozen=True)
class _Found:
    value: date | time
    span: tuple[int, int]
    confidence: float


def hour24(hour: int, minute: int, period: str | None) -> time | None:
    if period:
        pm = period.startswith(("p", "in the afternoon", "in the evening", "at night", "tonight"))
        if hour > 12:
            return None if pm or period.startswith(("a", "in the morning")) else time(hour, minute)
        hour = hour % 12 + (12 if pm else 0)
    elif 1 <= hour <= 7:
        # No am/pm: callers book business hours, so "at two" is 14:00, not 02:00.
        hour += 12
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        return None
    return time(hour, minute)


def find_time(norm: str) -> _Found | None:
    """A clock time in normalised text (number words already digits)."""
    m = _PAST_TO.search(norm)
    if m:
        amount = {"half": 30, "quarter": 15}.get(m.group(1)) or int(m.group(1))
        hour = int(m.group(3))
        if m.group(2) in ("to", "till", "before"):
            hour, minute = hour - 1, 60 - amount
        else:
            minute = amount
        t = hour24(hour % 24, minute, m.group(4))
        if t:
            return _Found(t, m.span(), 0.9)
    m = _CLOCK.search(norm)
    if m and int(m.group(2)) < 60:
        t = hour24(int(m.group(1)), int(m.group(2)), m.group(3))
        if t:
            return _Found(t, m.span(), 0.95 if m.group(3) else 0.85)
    m = _COMPACT.search(norm)
    if m and int(m.group(2)) < 60:
        t = hour24(int(m.group(1)), int(m.group(2)), m.group(3))
        if t:
            return _Found(t, m.span(), 0.75)
    for pattern, confidence in ((_HOUR, 0.95), (_OCLOCK, 0.85), (_AT_HOUR, 0.8)):
        m = pattern.search(norm)
        if m:
            period = m.group(2) if pattern is _HOUR else None
            t = hour24(int(m.group(1)), 0, period)
            if t:
                return _Found(t, m.span(), confidence)
    for word, t in _NAMED_TIMES.items():
        m = re.search(rf"\b(?:at\s+)?{word}\b", norm)
        if m:
            return _Found(t, m.span(), 0.95)
    for word, t in _PARTS_OF_DAY.items():
        m = re.search(rf"\b(?:in the\s+|this\s+)?{word}\b", norm)
        if m:
            return _Found(t, m.span(), 0.6)  # "morning" is a range, not a time: confirm it
    return None


def _year(raw: str | None) -> int | None:
    if not raw:
        return None
    parts = raw.split()
    if len(parts) == 2:  # "19 84" from "nineteen eighty four"
        return int(parts[0]) * 100 + int(parts[1])
    return int(raw)


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _next_year_if_past(candidate: date | None, today: date) -> date | None:
    """Prefer-future: a month-day already past this year means next year."""
    if candidate is None or candidate >= today:
        return candidate
    # Feb 29th said in a leap year's spring lands on a non-leap year: no such date.
    return _safe_date(candidate.year + 1, candidate.month, candidate.day)


def _next_day_of_month(day: int, today: date) -> date | None:
    """Prefer-future for "the 3rd": this month if still ahead, else the next month that has it."""
    for ahead in range(3):
        month0 = today.month - 1 + ahead
        d = _safe_date(today.year + month0 // 12, month0 % 12 + 1, day)
        if d and d >= today:
            return d
    return None


def find_date(norm: str, now: datetime, *, prefer_future: bool = True) -> _Found | None:
    """A calendar date in normalised text."""
    today = now.date()
    # Day-of-month first: in "the 12th of december 19 70" the month is followed by the year.
    for pattern, month_group, day_group in ((_DAY_OF_MONTH, 2, 1), (_MONTH_DAY, 1, 2)):
        m = pattern.search(norm)
        if m:
            month, day = _MONTHS[m.group(month_group)], int(m.group(day_group))
            year = _year(m.group(3))
            d = _safe_date(year or today.year, month, day)
            if d and year is None and prefer_future:
                d = _next_year_if_past(d, today)
            if d is None:
                return None  # "february 30th": say nothing rather than guess another day
            return _Found(d, m.span(), 0.95 if year or not prefer_future else 0.9)
    m = _NUMERIC.search(norm)
    if m:
        # US order: month/day[/year].
        year = int(m.group(3)) if m.group(3) else today.year
        year += 1900 if year < 100 and year > today.year % 100 else (2000 if year < 100 else 0)
        d = _safe_date(year, int(m.group(1)), int(m.group(2)))
        if d:
            return _Found(d, m.span(), 0.85)
    m = _DAY_NEXT_MONTH.search(norm)
    if m:
        first = today.replace(day=1)
        if m.group(2) == "next":
            first = (first + timedelta(days=32)).replace(day=1)
        d = _safe_date(first.year, first.month, int(m.group(1)))
        if d:
            return _Found(d, m.span(), 0.9)
    m = _BARE_ORDINAL.search(norm)
    if m:
        day = int(m.group(1) or m.group(2))
        d = _next_day_of_month(day, today)
        if d:
            return _Found(d, m.span(), 0.85)
    return _relative_date(norm, now)


_CALENDAR = parsedatetime.Calendar(version=parsedatetime.VERSION_CONTEXT_STYLE)
_RELATIVE_HINT = re.compile(
    r"\b(today|tomorrow|yesterday|tonight|monday|tuesday|wednesday|thursday|friday|saturday|"
    r"sunday|week|weeks|days?|month|months|fortnight|next|weekend)\b"
)


# A month named without a day ("next August", "in March"): parsedatetime makes it the 1st, a day
# nobody said; no date, so the question is asked again.
_MONTH_ALONE = re.compile(
    r"\b(?:" + "|".join(m.lower() for m in calendar.month_name if m and m != "May") + r")\b"
)


def _relative_date(norm: str, now: datetime) -> _Found | None:
    m = _RELATIVE_HINT.search(norm)
    if not m or (_MONTH_ALONE.search(norm) and not re.search(r"\d", norm)):
        return None
    phrase = re.sub(r"\bthis (?=(mon|tues|wednes|thurs|fri|satur|sun)day)", "", norm)
    phrase = phrase.replace("the day after tomorrow", "in 2 days")
    phrase = re.sub(r"\b(?:the|a|one) week from (today|tomorrow)\b",
                    lambda m: "in 7 days" if m.group(1) == "today" else "in 8 days", phrase)  # fmt: skip
    result, ctx = _CALENDAR.parseDT(phrase, sourceTime=now)
    if not ctx.hasDate:
        return None
    return _Found(result.date(), m.span(), 0.9)


# How Whisper writes a spoken birth year it was unsure of (measured on telephone audio): it starts
# a year and says it again. "nineteen eighty five" -> "1988-85"; "nineteen seventy eight" ->
# "1977, 1978"; "nineteen eighty four" -> "1594, 84"; "nineteen fifty eight" -> "1950, 8th". The
# caller said one year, the last one Whisper settled on. (Commas are gone after numerals().)
_YEAR_SAID_TWICE = re.compile(r"\b(?:19|20)\d\d[- ]+((?:19|20)\d\d)\b")
_YEAR_ENDING_AGAIN = re.compile(r"\b(1[5-9]|20)(\d\d)[- ]+(\d\d)\b(?![- ]*\d)")
_DECADE_THEN_DIGIT = re.compile(r"\b(19\d)0[- ]+(\d)(?:st|nd|rd|th)?\b(?![- ]*\d)")


def _settled_year(norm: str) -> str:
    """The year a caller said, where Whisper wrote it twice (see above)."""
    norm = _YEAR_SAID_TWICE.sub(r"\1", norm)
    norm = _YEAR_ENDING_AGAIN.sub(lambda m: ("19" if m.group(1) < "19" else m.group(1)) + m.group(3), norm)
    return _DECADE_THEN_DIGIT.sub(r"\1\2", norm)


def extract_date_time(text: str, want: str, now: datetime | None = None) -> Entity | None:
    """``want`` is "date", "time", "datetime" or "date_of_birth" (a past date, spoken year)."""
    now = now or datetime.now()
    norm = numerals(text)
    if want == "date_of_birth":
        found = find_date(_settled_year(norm), now, prefer_future=False)
        if not found or not isinstance(found.value, date):
            return None  # a date still to come is returned: the dialogue says so (filling.read_spoken)
        # A birth date without a year is incomplete: low confidence so the engine asks again.
        has_year = found.value.year != now.year
        return Entity("date", found.value.isoformat(), text.strip(), found.confidence if has_year else 0.4)
    t = find_time(norm)
    if want == "time":
        return Entity("time", t.value.strftime("%H:%M"), text.strip(), t.confidence) if t else None
    # Take the time out first so "at 2" is not read as a day by the date finders.
    rest = norm[: t.span[0]] + " " + norm[t.span[1] :] if t else norm
    d = find_date(rest, now)
    if d and t and want == "datetime":
        stamp = datetime.combine(d.value, t.value).strftime("%Y-%m-%dT%H:%M")
        return Entity("datetime", stamp, text.strip(), min(d.confidence, t.confidence))
    if d:
        return Entity("date", d.value.isoformat(), text.strip(), d.confidence)
    if t and want == "datetime":
        return Entity("time", t.value.strftime("%H:%M"), text.strip(), t.confidence)
    return None
