"""speech/digit_repair.py without a model: which transcripts get a repair, which strings are
tried, and that only a clear winner is offered (the scorer is a fake with fixed scores)."""

from __future__ import annotations

from typing import Any

import pytest

from ari_app.speech import closed_set, digit_repair
from ari_app.speech.digit_repair import candidates, digits_in, repair


def test_digits_in_reads_words_doubles_and_oh() -> None:
    assert digits_in("5 5 1, double two, oh 3. Um, five") == "55122035"
    assert digits_in("It's 555-123-4567.") == "5551234567"
    assert digits_in("triple seven zero") == "7770"
    assert digits_in("I don't have it") == ""


def test_candidates_one_short_insert_a_zero_or_a_double_anywhere() -> None:
    got = candidates("247753169", 10)
    assert "2477530169" in got and "2247753169" in got and "2477531169" in got
    assert all(len(c) == 10 for c in got) and len(got) == len(set(got))
    assert "2477539169" not in got  # only a zero or a neighbour's double
    assert candidates("12345678901", 10) == sorted(
        {"12345678901"[:i] + "12345678901"[i + 1 :] for i in range(11)}
    )
    assert candidates("12345678", 10) == []  # two off: not a one-digit slip


@pytest.fixture
def scores(monkeypatch: pytest.MonkeyPatch) -> dict[str, float]:
    table: dict[str, float] = {}
    seen: list[list[str]] = []

    def score(
        model: Any, tokenizer: Any, encoded: Any, frames: int, texts: list[str]
    ) -> list[tuple[float, str]]:
        seen.append(list(texts))
        return sorted(((table.get(t, -30.0), t) for t in texts), reverse=True)

    monkeypatch.setattr(closed_set, "score", score)
    table["_seen"] = seen  # type: ignore[assignment]
    return table


def test_a_clear_winner_is_offered(scores: dict[str, Any]) -> None:
    scores["2 4 7 7 5 3 0 1 6 9"] = -7.2
    scores["2 4 7 7 5 3 3 1 6 9"] = -9.5
    got = repair(None, None, None, 300, ["2 4 7, 7 5 3, 1 6 9."], 10)
    assert got is not None and got.text == "2 4 7 7 5 3 0 1 6 9" and got.margin == pytest.approx(2.3)


def test_a_near_tie_or_a_poor_score_is_not_offered(scores: dict[str, Any]) -> None:
    scores["2 4 7 7 5 3 0 1 6 9"] = -7.2
    scores["2 4 7 7 5 3 3 1 6 9"] = -7.6  # margin 0.4
    assert repair(None, None, None, 300, ["247 753 169"], 10) is None
    scores.clear()
    scores["2 4 7 7 5 3 0 1 6 9"] = -14.0  # wins, but not like speech that was said
    assert repair(None, None, None, 300, ["247 753 169"], 10) is None


def test_no_scoring_when_a_hypothesis_already_fits_or_none_is_near(scores: dict[str, Any]) -> None:
    seen = scores["_seen"]
    assert repair(None, None, None, 300, ["247 753 169", "247 753 0169"], 10) is None
    assert repair(None, None, None, 300, ["I'd rather not say"], 10) is None
    assert repair(None, None, None, 300, ["1 2 3"], 4) is None  # under MIN_DIGITS
    assert seen == []
    assert digit_repair.MIN_DIGITS == 5
