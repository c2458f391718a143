"""outbound: the calling window — when a contact may be called, in the contact's own time zone.

Why: calling hours are the law in most places (and common courtesy everywhere), and they are
the callee's hours, not the server's: 20:30 in Berlin is 14:30 in New York. ``next_allowed``
turns "now" into the earliest moment a contact may be called, across days off and daylight
saving changes (zoneinfo does the offsets; local wall times are what the admin wrote).
"""

from __future__ import annotations

import datetime as dt
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # index = datetime.weekday()


class Window(BaseModel):
    """Local wall-clock hours ``start`` (inclusive) to ``end`` (exclusive) on ``days``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: time = time(8, 0)
    end: time = time(21, 0)
    days: tuple[str, ...] = DAYS[:6]

    @field_validator("start", "end", mode="before")
    @classmethod
    def _wall_time(cls, v: Any) -> Any:
        # YAML 1.1 reads an unquoted 8:00 as the base-60 integer 480 (and 21:00 as 1260).
        if isinstance(v, int) and not isinstance(v, bool):
            if 0 <= v < 24 * 60:
                return time(*divmod(v, 60))
            raise ValueError('write the time as "HH:MM" (in quotes)')
        return v

    @field_validator("days", mode="before")
    @classmethod
    def _days(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [d for d in v.replace(",", " ").split() if d]
        if not isinstance(v, (list, tuple)) or not v:
            raise ValueError(f"must be a list of days, e.g. [mon, tue] (days: {', '.join(DAYS)})")
        days = [str(d).strip().lower()[:3] for d in v]
        unknown = [str(d) for d, short in zip(v, days, strict=True) if short not in DAYS]
        if unknown:
            raise ValueError(f"unknown day {', '.join(map(repr, unknown))} (days: {', '.join(DAYS)})")
        return tuple(sorted(set(days), key=DAYS.index))

    @model_validator(mode="after")
    def _start_before_end(self) -> Window:
        if self.start >= self.end:
            raise ValueError(f"start {self.start:%H:%M} must be before end {self.end:%H:%M}")
        return self


def _local(day: dt.date, at: time, zone: ZoneInfo) -> datetime:
    """``day`` at ``at`` in ``zone``, in UTC. A wall time a DST jump skips (02:30 when the clocks
    go from 02:00 to 03:00) is read with the offset before the jump (it becomes 03:30); one that
    happens twice is its first occurrence (fold=0)."""
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def next_allowed(now_utc: datetime, tz: str, window: Window) -> datetime:
    """``now_utc`` if it is inside ``window`` in zone ``tz``, else the window's next opening (UTC).

    A naive ``now_utc`` is taken as UTC.
    """
    now = now_utc.replace(tzinfo=UTC) if now_utc.tzinfo is None else now_utc.astimezone(UTC)
    zone = ZoneInfo(tz)
    today = now.astimezone(zone).date()
    for offset in range(8):  # the same weekday next week at the latest
        day = today + timedelta(days=offset)
        if DAYS[day.weekday()] not in window.days:
            continue
        opens, closes = _local(day, window.start, zone), _local(day, window.end, zone)
        if now < opens:
            return opens
        if now < closes:
            return now
    raise AssertionError("a window has at least one day")  # pragma: no cover (validated)


def is_allowed(now_utc: datetime, tz: str, window: Window) -> bool:
    now = now_utc.replace(tzinfo=UTC) if now_utc.tzinfo is None else now_utc
    return next_allowed(now, tz, window) <= now
