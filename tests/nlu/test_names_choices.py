from __future__ import annotations

import pytest

from ari_app.dialog.nlu.entities import SpokenEntityExtractor, spelled_letters

extract = SpokenEntityExtractor().extract

NAMES = [
    ("my name is sarah connor", "Sarah Connor"),
    ("this is david mcdonald speaking", "David McDonald"),
    ("it's maria", "Maria"),
    ("hi i'm peter parker", "Peter Parker"),
    ("you can call me tom", "Tom"),
    ("k a t e", "Kate"),
    ("b as in bravo o b", "Bob"),
    ("s for sierra m i t h", "Smith"),
]


@pytest.mark.parametrize(("spoken", "expected"), NAMES)
def test_names(spoken: str, expected: str) -> None:
    entity = extract(spoken, "name")
    assert entity is not None and (entity.type, entity.value) == ("name", expected)


def test_spelled_name_beats_carrier_phrase_confidence() -> None:
    spelled = extract("j o h n", "name")
    said = extract("my name is john", "name")
    bare = extract("john", "name")
    assert spelled and said and bare
    assert spelled.confidence > said.confidence > bare.confidence


def test_spelled_letters() -> None:
    assert spelled_letters("it's m as in mike a r k") == "mark"
    assert spelled_letters("just a name") is None


@pytest.mark.parametrize("spoken", ["yes", "my number is 5 5 5 1 2 3 4"])
def test_not_a_name(spoken: str) -> None:
    assert extract(spoken, "name") is None


OPTIONS = ["Billing", "Technical support", "Sales", "Cancel my account"]
CHOICES = [
    ("billing please", "Billing"),
    ("tech support", "Technical support"),
    ("sales", "Sales"),
    ("i want to cancel my account", "Cancel my account"),
    ("the first one", "Billing"),
    ("the second option", "Technical support"),
    ("number three", "Sales"),
    ("the last one", "Cancel my account"),
    ("techincal", "Technical support"),  # ASR / typo tolerance
]


@pytest.mark.parametrize(("spoken", "expected"), CHOICES)
def test_choices(spoken: str, expected: str) -> None:
    entity = extract(spoken, "choice", choices=OPTIONS)
    assert entity is not None and (entity.type, entity.value) == ("choice", expected)


def test_no_choice() -> None:
    assert extract("i'd like a pizza", "choice", choices=OPTIONS) is None
