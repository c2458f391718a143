"""Transcript and log redaction beyond card digits: SSNs, spelled-out numbers, dates of birth."""

from __future__ import annotations

from ari_app.dialog.redact import mask, redact, redact_text


def test_card_numbers_in_digits_or_words_are_masked() -> None:
    assert redact_text("card 4111 1111 1111 1111 please") == "card ****1111 please"
    spelled = "it's four one one one, one one one one, one one one one, one one one one."
    assert "one one" not in redact_text(spelled)


def test_social_security_numbers_are_masked() -> None:
    assert redact_text("my SSN is 123-45-6789.") == "my SSN is ****."
    assert "six seven eight nine" not in redact_text("one two three four five six seven eight nine")


def test_phone_numbers_and_order_numbers_stay_readable() -> None:
    for text in ("five five five one two three four five six seven", "order 10452", "call 555-123-4567"):
        assert redact_text(text) == text


def test_a_date_of_birth_keeps_no_digits_and_known_secrets_are_replaced() -> None:
    assert mask("March 3rd, 1990") == "****"
    assert mask("1985-04-12") == "****"
    assert redact("I was born 1985-04-12", ["1985-04-12"]) == "I was born ****"


def test_ids_with_a_card_like_digit_run_inside_stay_whole() -> None:
    # A real session id from a CI run: its 13-digit run is Luhn-valid, and the log showed
    # "20dfbb****7875b06d33bbae21e", so nobody could find the call by its id.
    sid = "20dfbb1402324787875b06d33bbae21e"
    assert redact_text(f"session={sid}") == f"session={sid}"
    assert redact_text("card 1402324787875, thanks") == "card ****7875, thanks"
