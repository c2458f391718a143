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


def test_standard_library_log_lines_go_through_the_same_redaction(capsys) -> None:
    import logging

    import structlog

    from ari_app.logs import configure_logging

    root = logging.getLogger()
    saved = (root.handlers[:], root.level, structlog.get_config())
    try:  # configure_logging binds the (captured) stderr of this test: undone below
        configure_logging("info")
        logging.getLogger("some.library").warning(
            "cannot reach redis://iva:s3cret-pw@10.0.0.5:6390/0 for card 4111 1111 1111 1111"
        )
        err = capsys.readouterr().err
    finally:
        root.handlers = saved[0]
        root.setLevel(saved[1])
        structlog.configure(**saved[2])
    assert "s3cret-pw" not in err and "redis://***@10.0.0.5:6390/0" in err
    assert "4111 1111" not in err and "****1111" in err


def test_urls_with_credentials_are_redacted_in_structlog_fields() -> None:
    out = redact_processor(None, "info", {"event": "x", "url": "https://user:pw@example.org/v1"})
    assert out["url"] == "https://***@example.org/v1"
