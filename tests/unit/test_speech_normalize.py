"""How numbers, times, dates and codes are read aloud on the phone."""

import pytest

from ari_app.speech.normalize import digits, normalize_for_speech


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("$42.50", "forty-two dollars and fifty cents"),
        ("$1", "one dollar"),
        ("$0.99", "ninety-nine cents"),
        ("$0.01", "one cent"),
        ("$1,250", "one thousand two hundred and fifty dollars"),
        ("$3.5", "three dollars and fifty cents"),
        ("$2.5 million", "two point five million dollars"),
    ],
)
def test_amounts(text: str, spoken: str) -> None:
    assert normalize_for_speech(text) == spoken


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("2:30 pm", "two thirty p m"),
        ("2:05 PM", "two oh five p m"),
        ("9 a.m. or later", "nine a m or later"),
        ("10am", "ten a m"),
        ("3:00 pm", "three p m"),
        ("14:30", "fourteen thirty"),
        ("17:00", "seventeen hundred"),
        ("Due at 2:30 p.m. Thanks.", "Due at two thirty p m. Thanks."),
    ],
)
def test_times(text: str, spoken: str) -> None:
    assert normalize_for_speech(text) == spoken


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("11/21/2026", "November twenty-first twenty twenty-six"),
        ("2026-03-01", "March first twenty twenty-six"),
        ("3/4", "March fourth"),
        ("Jan 5th, 2027", "January fifth twenty twenty-seven"),
        ("December 25", "December twenty-fifth"),
        ("Sept. 2", "September second"),
        ("13/45/2026", "thirteen/forty-five/two thousand and twenty-six"),  # not a date: left as numbers
    ],
)
def test_dates(text: str, spoken: str) -> None:
    assert normalize_for_speech(text) == spoken


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("555-123-4567", "five five five, one two three, four five six seven"),
        ("(800) 555-0199", "eight zero zero, five five five, zero one nine nine"),
        ("83920174", "eight three nine, two zero one, seven four"),
        ("1234567", "one two three, four five six seven"),
        ("02139", "zero two one, three nine"),
        ("007", "zero zero seven"),
        ("AB12C", "A B one two C"),
    ],
)
def test_digit_strings_read_one_digit_at_a_time_with_group_pauses(text: str, spoken: str) -> None:
    assert normalize_for_speech(text) == spoken


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("3rd", "third"),
        ("the 21st", "the twenty-first"),
        ("102nd", "one hundred and second"),
        ("42", "forty-two"),
        ("1,000", "one thousand"),
        ("3.75", "three point seven five"),
        ("15% off", "fifteen percent off"),
    ],
)
def test_ordinals_cardinals_decimals(text: str, spoken: str) -> None:
    assert normalize_for_speech(text) == spoken


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("Dr. Smith", "Doctor Smith"),
        ("12 Main St. Apt. 4", "twelve Main Street Apartment four"),
        ("No. 5 and #7", "number five and number seven"),
        ("e.g. this", "for example this"),
        ("No, thanks.", "No, thanks."),  # "No" without a number stays a word
    ],
)
def test_abbreviations(text: str, spoken: str) -> None:
    assert normalize_for_speech(text) == spoken


def test_sentence_with_everything_and_text_without_numbers() -> None:
    assert normalize_for_speech("Your total is $42.50, due 11/21/2026 at 2:30 pm.") == (
        "Your total is forty-two dollars and fifty cents, due November twenty-first twenty twenty-six"
        " at two thirty p m."
    )
    assert normalize_for_speech("  Hello   there ") == "Hello there"
    assert normalize_for_speech("") == ""


def test_digits_keeps_given_grouping() -> None:
    assert digits("12-34") == "one two, three four"
    assert digits("1234", group_sep=" ") == "one two three four"
