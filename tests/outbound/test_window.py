"""Calling window: local hours in the contact's zone, days off, the end edge, DST."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest
from pydantic import ValidationError

from ari_app.outbound.window import Window, is_allowed, next_allowed

W = Window()  # 08:00-21:00 mon-sat


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_inside_the_window_is_now() -> None:
    now = utc(2024, 6, 5, 10, 0)  # a Wednesday
    assert next_allowed(now, "UTC", W) == now
    assert is_allowed(now, "UTC", W)


def test_before_opening_waits_for_opening() -> None:
    assert next_allowed(utc(2024, 6, 5, 6, 30), "UTC", W) == utc(2024, 6, 5, 8, 0)


def test_end_is_exclusive_next_day_opening() -> None:
    assert next_allowed(utc(2024, 6, 5, 20, 59, 59), "UTC", W) == utc(2024, 6, 5, 20, 59, 59)
    assert next_allowed(utc(2024, 6, 5, 21, 0), "UTC", W) == utc(2024, 6, 6, 8, 0)
    assert not is_allowed(utc(2024, 6, 5, 21, 0), "UTC", W)


def test_sunday_waits_for_monday() -> None:
    sunday = utc(2024, 6, 9, 12, 0)
    assert sunday.strftime("%a") == "Sun"
    assert next_allowed(sunday, "UTC", W) == utc(2024, 6, 10, 8, 0)
    assert next_allowed(utc(2024, 6, 8, 22, 0), "UTC", W) == utc(2024, 6, 10, 8, 0)  # Saturday night


def test_contact_in_another_zone_uses_their_hours() -> None:
    now = utc(2024, 6, 5, 19, 30)  # 21:30 in Berlin (CEST), 15:30 in New York (EDT)
    assert next_allowed(now, "Europe/Berlin", W) == utc(2024, 6, 6, 6, 0)  # 08:00 CEST
    assert next_allowed(now, "America/New_York", W) == now
    early = utc(2024, 6, 5, 10, 0)  # 06:00 in New York
    assert next_allowed(early, "America/New_York", W) == utc(2024, 6, 5, 12, 0)


def test_local_day_not_utc_day_decides() -> None:
    # Saturday 23:30 UTC is already Sunday 08:30 in Tokyo: closed there until Monday.
    assert next_allowed(utc(2024, 6, 8, 23, 30), "Asia/Tokyo", W) == utc(2024, 6, 9, 23, 0)


def test_daylight_saving_changes_the_utc_opening() -> None:
    # New York: EST (UTC-5) before 10 March 2024, EDT (UTC-4) from that day on.
    assert next_allowed(utc(2024, 3, 9, 3, 0), "America/New_York", W) == utc(2024, 3, 9, 13, 0)
    assert next_allowed(utc(2024, 3, 11, 3, 0), "America/New_York", W) == utc(2024, 3, 11, 12, 0)
    # A window opening inside the skipped hour (02:30 on 10 March) opens just after the jump.
    night = Window(start=time(2, 30), end=time(5, 0), days=("sun",))
    assert next_allowed(utc(2024, 3, 10, 5, 0), "America/New_York", night) == utc(2024, 3, 10, 7, 30)


def test_naive_now_is_utc() -> None:
    assert next_allowed(datetime(2024, 6, 5, 6, 0), "UTC", W) == utc(2024, 6, 5, 8, 0)


def test_window_validation() -> None:
    assert Window.model_validate({"start": 480, "end": 1260}).start == time(8, 0)  # YAML's 8:00
    assert Window.model_validate({"days": "Mon, tuesday"}).days == ("mon", "tue")
    with pytest.raises(ValidationError, match="before end"):
        Window(start=time(21, 0), end=time(8, 0))
    with pytest.raises(ValidationError, match="unknown day 'funday'"):
        Window.model_validate({"days": ["mon", "funday"]})
    with pytest.raises(ValidationError, match="list of days"):
        Window.model_validate({"days": []})
