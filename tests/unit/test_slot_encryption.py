"""Sensitive values: encrypted with the first key, readable with any configured one (rotation),
and a bad key is a clear start-up error, never a silent fall back to clear text."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from ari_app.session.masking import SlotProtector
from ari_app.session.settings import SessionSettings


def _protector(key: str | None) -> SlotProtector:
    return SlotProtector(SessionSettings(encryption_key=SecretStr(key) if key else None))


def test_a_rotated_key_still_reads_what_the_old_one_wrote() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    written = _protector(old).protect_value("1985-04-12")
    assert written.startswith("enc:") and "1985" not in written
    rotated = _protector(f"{new},{old}")
    assert rotated.reveal(written) == "1985-04-12"
    assert _protector(new).protect_value("x") != _protector(old).protect_value("x")


def test_a_key_that_is_gone_loses_the_value_not_the_call() -> None:
    written = _protector(Fernet.generate_key().decode()).protect_value("1985-04-12")
    state = {"frames": [{"flow": "f", "slots": {"dob": written}}], "last_prompt": "hi"}
    back = _protector(Fernet.generate_key().decode()).reveal_conversation_state(state)
    assert back["frames"][0]["slots"]["dob"] == "****"


def test_a_bad_key_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="is not a Fernet key"):
        _protector("not-a-key")
