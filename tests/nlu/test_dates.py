from __future__ import annotations

import pytest

from ari_app.dialog.nlu.entities import SpokenEntityExtractor
from tests.nlu.conftest import NOW

extract = SpokenEntityExtractor().extract

# now = Wednesday 2025-06-11 10:00
DATES = [
    ("the fourth", "2025-07-04"),  # already past this month -> next month
    ("on the 12th", "2025-06-12"),
    ("the twenty ninth", "2025-06-29"),
    ("the thirtieth", "2025-06-30"),
    ("next thursday", "2025-06-19"),
    ("thursday", "2025-06-12"),
    ("a week from today", "2025-06-18"),
    ("tomorrow", "2025-06-12"),
    ("the day after tomorrow", "2025-06-13"),
    ("in three days", "2025-06-14"),
    ("april second", "2026-04-02"),  # month-day already past -> next year
    ("december the first", "2025-12-01"),
    ("the tenth of july", "2025-07-10"),
    ("on the twenty first of september", "2025-09-21"),
    ("august 9th", "2025-08-09"),
    ("sunday the fifteenth", "2025-06-15"),
    ("the second of next month", "2025-07-02"),
    ("7/4", "2025-07-04"),
    ("can we do it on the 20th please", "2025-06-20"),
]


@pytest.mark.parametrize("spoken", ["next August", "Next August.", "in october", "sometime next september"])
def test_a_month_without_a_day_is_no_date(spoken: str) -> None:
    # parsedatetime makes "next August" the 1st: a day the caller never said ("Next Thursday"
    # misheard as "Next August." was offered times on August 1st in a task-success call).
    assert extract(spoken, "date", now=NOW) is None


@pytest.mark.parametrize(("spoken", "expected"), DATES)
def test_spoken_dates(spoken: str, expected: str) -> None:
    entity = extract(spoken, "date", now=NOW)
    assert entity is not None, spoken
    assert (entity.type, entity.value) == ("date", expected)
    assert 0 < entity.confidence <= 1


DATETIMES = [
    ("the fifth at two pm", "2025-07-05T14:00"),
    ("tomorrow at nine thirty am", "2025-06-12T09:30"),
    ("monday at 4 pm", "2025-06-16T16:00"),
    ("next friday at eleven", "2025-06-20T11:00"),
    ("the twentieth at quarter past two", "2025-06-20T14:15"),
    ("tomorrow afternoon", "2025-06-12T14:00"),
]


@pytest.mark.parametrize(("spoken", "expected"), DATETIMES)
def test_spoken_datetimes(spoken: str, expected: str) -> None:
    entity = extract(spoken, "datetime", now=NOW)
    assert entity is not None and (entity.type, entity.value) == ("datetime", expected)


TIMES = [
    # how Whisper writes a time said on its own
    ("1130", "11:30"),
    ("11.30.", "11:30"),
    ("at 930", "09:30"),
    ("five pm", "17:00"),
    ("at eight thirty in the morning", "08:30"),
    ("half past ten", "10:30"),
    ("quarter to three", "14:45"),
    ("midnight", "00:00"),
    ("at 2", "14:00"),  # no am/pm: business hours
    ("four o'clock", "16:00"),
    ("eleven fifteen am", "11:15"),
]


@pytest.mark.parametrize(("spoken", "expected"), TIMES)
def test_spoken_times(spoken: str, expected: str) -> None:
    entity = extract(spoken, "time", now=NOW)
    assert entity is not None and (entity.type, entity.value) == ("time", expected)


BIRTH_DATES = [
    ("june fifth nineteen eighty four", "1984-06-05"),
    ("5/6/1984", "1984-05-06"),
    ("october third nineteen sixty two", "1962-10-03"),
    ("the fourth of july two thousand five", "2005-07-04"),
    ("february twenty eighth nineteen ninety", "1990-02-28"),
    ("12/25/85", "1985-12-25"),
    # A spoken year Whisper wrote twice, as measured on telephone audio: the year said is the one
    # it settled on.
    ("That 12th of April 1988-85.", "1985-04-12"),  # "nineteen eighty five"
    ("April 22nd, 1977, 1978.", "1978-04-22"),  # "nineteen seventy eight"
    ("June 5th, 1594, 84.", "1984-06-05"),  # "nineteen eighty four"
    ("It's November 2nd, 1950, 8th.", "1958-11-02"),  # "nineteen fifty eight"
    # ...and what must not be read that way: a year followed by other numbers.
    ("April 12th 1985, my number is 55 12", "1985-04-12"),
    ("march 3rd 19 80", "1980-03-03"),
]


@pytest.mark.parametrize(("spoken", "expected"), BIRTH_DATES)
def test_dates_of_birth(spoken: str, expected: str) -> None:
    entity = extract(spoken, "date_of_birth", now=NOW)
    assert entity is not None and (entity.type, entity.value) == ("date", expected)
    assert entity.confidence >= 0.8


def test_birth_date_without_year_is_low_confidence() -> None:
    entity = extract("june fifth", "date_of_birth", now=NOW)
    assert entity is not None and entity.confidence < 0.5


@pytest.mark.parametrize("spoken", ["february thirtieth", "i don't know", "sometime", ""])
def test_no_date(spoken: str) -> None:
    assert extract(spoken, "date", now=NOW) is None


def test_vague_part_of_day_is_less_confident_than_a_clock_time() -> None:
    vague = extract("tomorrow morning", "datetime", now=NOW)
    exact = extract("tomorrow at nine am", "datetime", now=NOW)
    assert vague is not None and exact is not None and vague.value == exact.value
    assert vague.confidence < exact.confidence
