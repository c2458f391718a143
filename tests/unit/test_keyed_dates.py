"""Dates keyed on the phone pad (dialog/answers.keyed_date): the recovery when a date will not
come through speech. MMDD is a date ahead; MMDDYYYY is any date; a birth date needs its year."""

from __future__ import annotations

from datetime import date

import pytest

from ari_app.dialog.answers import Rejected, keyed_date
from ari_app.dialog.filling import keypad_hint
from ari_app.dialog.flows import Dtmf, Slot

TODAY = date(2026, 12, 3)


@pytest.mark.parametrize(
    ("keys", "birth", "want"),
    [
        ("1209", False, "2026-12-09"),
        ("0105", False, "2027-01-05"),  # already past this year: next year's
        ("1203", False, "2026-12-03"),  # today is still ahead enough
        ("12092026", False, "2026-12-09"),
        ("04121985", True, "1985-04-12"),
    ],
)
def test_keyed_dates(keys: str, birth: bool, want: str) -> None:
    assert keyed_date(keys, TODAY, birth=birth) == want


@pytest.mark.parametrize(
    ("keys", "birth", "says"),
    [
        ("0412", True, "eight digits"),  # a birth date without its year
        ("123", False, "four digits"),
        ("02301985", True, "isn't a date"),
        ("1399", False, "isn't a date"),
        ("04122030", True, "still to come"),
        ("12*9", False, "four digits"),
    ],
)
def test_bad_keyed_dates_say_what_to_key(keys: str, birth: bool, says: str) -> None:
    with pytest.raises(Rejected) as e:
        keyed_date(keys, TODAY, birth=birth)
    assert says in str(e.value) and e.value.asks


def test_keypad_hint_per_slot() -> None:
    dob = Slot(type="date", prompt="And your date of birth?", label="your date of birth")
    day = Slot(type="date", prompt="What day?")
    phone = Slot(type="digits", prompt="Phone?", dtmf=Dtmf(min_length=10, max_length=10))
    menu = Slot(type="choice", prompt="Which?", dtmf=Dtmf(menu={"1": "a", "2": "b"}))
    assert "month, day and year" in (keypad_hint("dob", dob) or "")
    assert "four digits" in (keypad_hint("new_date", day) or "")
    assert keypad_hint("phone", phone) == "You can also type it on your keypad."
    assert keypad_hint("pick", menu) is None
    assert keypad_hint("day", Slot(type="date", prompt="Day?", dtmf=Dtmf(allowed=False))) is None
