from __future__ import annotations

import pytest

from ari_app.dialog.nlu.entities import SpokenEntityExtractor

extract = SpokenEntityExtractor().extract

DIGITS = [
    ("one oh one", "101"),
    ("double oh seven", "007"),
    ("triple two four", "2224"),
    ("eight six seven five three oh nine", "8675309"),
    ("it's 3 3 oh 9", "3309"),
    ("my pin is four four double seven", "4477"),
    ("zero one two", "012"),
    ("the code is nine nine nine", "999"),
    ("seven 2 oh 1", "7201"),
    ("uh one two uh three four", "1234"),  # hesitations do not break the number
    ("six hundred", "600"),
]


@pytest.mark.parametrize(("spoken", "expected"), DIGITS)
def test_digit_strings(spoken: str, expected: str) -> None:
    entity = extract(spoken, "digits")
    assert entity is not None and (entity.type, entity.value) == ("digits", expected)


def test_compound_numbers_as_digits_are_less_confident() -> None:
    plain = extract("four one five", "digits")
    compound = extract("four fifteen", "digits")
    assert plain is not None and compound is not None
    assert compound.value == "415" and compound.confidence < plain.confidence


def test_no_digits() -> None:
    assert extract("i don't have it with me", "digits") is None


AMOUNTS = [
    ("sixty dollars and twenty five cents", "60.25", 0.9),
    ("$12", "12.00", 0.9),
    ("$1,250.75", "1250.75", 0.9),
    ("a hundred dollars", "100.00", 0.9),
    ("two hundred and fifty dollars", "250.00", 0.9),
    ("seventy five cents", "0.75", 0.85),
    ("nineteen ninety nine", "19.99", 0.5),
    ("ten bucks", "10.00", 0.9),
    ("five dollars fifty", "5.50", 0.9),
    ("about 45 dollars", "45.00", 0.9),
    ("fifteen", "15.00", 0.7),
]


@pytest.mark.parametrize(("spoken", "expected", "min_confidence"), AMOUNTS)
def test_amounts(spoken: str, expected: str, min_confidence: float) -> None:
    entity = extract(spoken, "amount")
    assert entity is not None and (entity.type, entity.value) == ("amount", expected)
    assert entity.confidence >= min_confidence


def test_ambiguous_amount_is_less_confident() -> None:
    ambiguous = extract("forty fifty", "amount")
    clear = extract("forty dollars fifty cents", "amount")
    assert ambiguous is not None and clear is not None and ambiguous.value == clear.value == "40.50"
    assert ambiguous.confidence < 0.7 < clear.confidence


NUMBERS = [
    ("three", 3),
    ("forty two", 42),
    ("a hundred and one", 101),
    ("two thousand twenty", 2020),
    ("party of six", 6),
    ("i need 2 tickets", 2),
    ("a dozen", 12),
    ("nineteen", 19),
    ("five hundred", 500),
    ("one", 1),
]


@pytest.mark.parametrize(("spoken", "expected"), NUMBERS)
def test_numbers(spoken: str, expected: int) -> None:
    entity = extract(spoken, "number")
    assert entity is not None and (entity.type, entity.value) == ("number", expected)


def test_no_number() -> None:
    assert extract("not sure", "number") is None


@pytest.mark.parametrize(
    ("heard", "expected"),
    [("free thirty", "3 30"), ("free firty pm", "3 30 pm"), ("five five free one", "5 5 3 1"),
     ("tree forty five", "3 45"), ("at free p.m.", "at 3 p m"), ("a free consultation", "a free consultation"),
     ("is it free a week on monday", "is it free a week on monday")],
)  # fmt: skip
def test_th_fronted_three_beside_numbers(heard: str, expected: str) -> None:
    # "No, make it three thirty" in a Caribbean voice came back "free"; only beside a number.
    from ari_app.dialog.nlu.entities.spoken import numerals

    assert numerals(heard) == expected
