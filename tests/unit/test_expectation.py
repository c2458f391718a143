"""speech: what recognition is told for each kind of open question (speech/expectation.py)."""

from __future__ import annotations

from ari_app.speech.expectation import Expectation


def test_a_request_is_primed_with_what_the_agent_helps_with() -> None:
    e = Expectation("request", choices=("rescheduling your appointment", "the refund", "your order status"))
    assert e.whisper_prompt() == (
        "I can help with rescheduling your appointment, the refund, or your order status."
    )
    assert Expectation("request", choices=("the refund",)).whisper_prompt() == "I can help with the refund."
    # One hypothesis and no closed set: a request is open speech, the menu only primes its words.
    assert e.n_best == 1
    assert e.candidates == ()


def test_a_request_with_nothing_to_offer_has_no_prompt() -> None:
    assert Expectation("request").whisper_prompt() is None
