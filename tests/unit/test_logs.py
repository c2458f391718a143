"""Logs never carry secrets or card numbers, whatever a call site passes."""

from __future__ import annotations

from ari_app.logs import redact_processor


def test_card_numbers_and_secret_keys_are_masked() -> None:
    out = redact_processor(
        None,
        "info",
        {
            "event": "call.heard",
            "text": "my card is 4111 1111 1111 1111 and my phone 5551234567",
            "ari_password": "hunter2",
            "nested": {"token": "abc", "said": ["5500-0000-0000-0004"]},
        },
    )
    assert "4111" not in out["text"].replace("****1111", "") and "****1111" in out["text"]
    assert "5551234567" in out["text"]  # a phone number is not a card number (fails Luhn/length)
    assert out["ari_password"] == "***"
    assert out["nested"]["token"] == "***"
    assert out["nested"]["said"] == ["****0004"]
