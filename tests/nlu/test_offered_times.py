"""dialog/nlu: offered times matched from the forms Whisper writes (held out from tuning: the
phrasings below were not used while writing offered.py, except the three from the issue)."""

from __future__ import annotations

import pytest

from ari_app.dialog.filling import combine_digits, grouped
from ari_app.dialog.nlu.entities.offered import match_offered_time, said_time

OFFERS = ["09:00", "11:30", "14:00"]


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("11th 30.", "11:30"), ("11-30.", "11:30"), ("1130.", "11:30"),  # the forms
        ("11 30", "11:30"), ("Eleven thirty, please.", "11:30"), ("half past eleven", "11:30"),
        ("At 2.", "14:00"), ("two o'clock works", "14:00"), ("2 p.m.", "14:00"), ("Nine.", "09:00"),
        ("the 9 o'clock one", "09:00"), ("I'll take 11:30", "11:30"), ("The 11 31", "11:30"),
    ],
)  # fmt: skip
def test_offered_time_from_asr_forms(text: str, want: str) -> None:
    assert match_offered_time(text, OFFERS) == want


@pytest.mark.parametrize("text", ["can I do four instead?", "4 pm", "yes", "next Tuesday", "555 1234"])
def test_not_an_offered_time(text: str) -> None:
    assert match_offered_time(text, OFFERS) is None


def test_a_time_not_on_offer_is_still_a_time() -> None:
    for text, want in [("Can I do four instead?", "16:00"), ("1130, please.", "11:30"), ("at 3:15", "15:15")]:
        ent = said_time(text)
        assert ent is not None and ent.value == want, text
    assert said_time("four or five") is None


def test_digit_groups_are_joined_and_read_back() -> None:
    assert grouped("5551234567") == "5 5 5, 1 2 3, 4 5 6 7"
    first = combine_digits("555123", None, 10, 0, keypad=True)
    assert first.value is None and first.partial == "555123" and "go on" in (first.say or "")
    assert combine_digits("4567", first.partial, 10, 1, keypad=True).value == "5551234567"
    lost = combine_digits("551234567", None, 10, 0, keypad=True)
    assert lost.partial is None and "9 digits" in (lost.say or "")  # one lost: say it all again
    assert "keypad" in (combine_digits("551234567", None, 10, 1, keypad=True).say or "")
    assert combine_digits("55512345677", None, 10, 0, keypad=False).value is None  # doubled digit
