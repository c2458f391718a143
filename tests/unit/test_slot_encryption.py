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


def _engine_frame(**fields: object) -> dict:
    """A frame with the fields ``dialog.state.Frame.to_dict`` writes (results: tool results)."""
    frame = {"flow": "billing", "step": 2, "slots": {}, "results": {}, "awaiting": None, "slot": None,
             "retries": 0, "asked": [], "partial": {}, "near_miss": {}, "tentative": {}}  # fmt: skip
    frame.update(fields)
    return frame


CUSTOMER = {"name": "Ada Lovelace", "dob": "1985-04-12", "card_number": "4111 1111 1111 1111",
            "balance": 12.5}  # fmt: skip


def test_tool_results_are_sealed_whole_and_come_back_for_a_takeover() -> None:
    p = _protector(Fernet.generate_key().decode())
    state = {"frames": [_engine_frame(results={"customer": CUSTOMER, "count": 3})], "last_prompt": ""}
    stored = p.protect_conversation_state(state)
    text = str(stored)
    for leak in ("Ada", "1985", "4111", "12.5"):
        assert leak not in text, leak
    assert p.reveal_conversation_state(stored)["frames"][0]["results"] == {"customer": CUSTOMER, "count": 3}
    assert p.protect_conversation_state(stored) == stored  # saving again never encrypts twice


def test_without_a_key_tool_results_lose_their_sensitive_fields() -> None:
    p = _protector(None)
    stored = p.protect_conversation_state(
        {"frames": [_engine_frame(results={"customer": CUSTOMER})]}, ["dob"]
    )
    customer = stored["frames"][0]["results"]["customer"]
    assert customer["dob"] == "****" and customer["card_number"] == "****1111"
    assert customer["name"] == "Ada Lovelace" and customer["balance"] == 12.5  # usable after a takeover


def test_a_card_number_in_a_slot_nobody_marked_sensitive_is_still_protected() -> None:
    for key in (Fernet.generate_key().decode(), None):
        p = _protector(key)
        frame = _engine_frame(slots={"order_number": "4111111111111111", "zip": "90210"})
        prompt = "I heard 4111 1111 1111 1111, is that right?"
        stored = p.protect_conversation_state({"frames": [frame], "last_prompt": prompt})
        assert "4111111111111111" not in str(stored) and "4111 1111" not in str(stored)
        assert stored["frames"][0]["slots"]["zip"] == "90210"


def test_a_state_an_older_version_wrote_in_clear_is_read_and_sealed_on_the_next_write() -> None:
    legacy = {"frames": [_engine_frame(slots={"dob": "1985-04-12"}, results={"customer": CUSTOMER})]}
    p = _protector(Fernet.generate_key().decode())
    assert p.reveal_conversation_state(legacy)["frames"][0]["slots"]["dob"] == "1985-04-12"
    sealed = p.protect_conversation_state(legacy, ["dob"])
    assert "1985" not in str(sealed)
    assert p.reveal_conversation_state(sealed)["frames"][0]["results"]["customer"] == CUSTOMER


def test_a_key_rotated_mid_call_reads_the_old_state_and_writes_with_the_new_key() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    state = {"frames": [_engine_frame(slots={"dob": "1985-04-12"}, results={"customer": CUSTOMER})]}
    written = _protector(old).protect_conversation_state(state, ["dob"])
    rotated = _protector(f"{new},{old}")  # the instance that takes the call over
    resumed = rotated.reveal_conversation_state(written)
    assert resumed["frames"][0]["slots"]["dob"] == "1985-04-12"
    rewritten = rotated.protect_conversation_state(resumed, ["dob"])
    only_new = _protector(new)  # the old key can now be retired for this record
    assert only_new.reveal_conversation_state(rewritten) == resumed
