"""Bad input gives a clear error that names the problem, never a bare traceback."""

from __future__ import annotations

import pytest

from ari_app.dialog.nlu import build_understanding
from ari_app.dialog.nlu.settings import NluSettings


@pytest.fixture(scope="module")
def tfidf():
    return build_understanding(NluSettings(classifier="tfidf"))


@pytest.mark.parametrize(
    ("examples", "message"),
    [
        ({}, "non-empty mapping"),
        ({"refund": []}, "intent 'refund' needs a list"),
        ({"refund": "i want a refund"}, "intent 'refund' needs a list"),
        ({"refund": ["ok", ""]}, "intent 'refund' has an empty"),
        ({"out_of_scope": ["x"]}, "reserved"),
        ({"": ["x"]}, "must be a non-empty string"),
    ],
)
def test_bad_training_data(tfidf, examples, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tfidf.fit(examples)


def test_bad_extract_calls(tfidf) -> None:
    with pytest.raises(ValueError, match="unknown entity type 'colour'"):
        tfidf.extract("red", "colour")
    with pytest.raises(ValueError, match="needs choices"):
        tfidf.extract("the first one", "choice")
    with pytest.raises(ValueError, match="text must be a string, got int"):
        tfidf.extract(42, "number")
    with pytest.raises(ValueError, match="text must be a string"):
        tfidf.parse(None)


def test_empty_text(tfidf) -> None:
    assert tfidf.extract("   ", "date") is None
    tfidf.fit({"a": ["hello there"], "b": ["goodbye now"]})
    parse = tfidf.parse("")
    assert parse.out_of_scope and parse.intents == [] and parse.entities == []


def test_bad_settings() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="classifier"):
        NluSettings(classifier="bert")
    with pytest.raises(ValueError, match="expected NluSettings or Settings"):
        build_understanding("nlu")  # type: ignore[arg-type]
