"""Sensitive slot values never reach Redis (or an agent's screen) in clear.

With ``session.encryption_key`` set and the ``cryptography`` package installed, values are
Fernet-encrypted (``enc:<token>``) so an authorised back office can recover them; otherwise
they are masked, keeping only the last digits a human needs to confirm ("****1234").
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from ari_app.session.settings import SessionSettings

log = logging.getLogger(__name__)

MASK = "****"
ENCRYPTED_PREFIX = "enc:"


def mask_value(value: Any) -> str:
    """Mask one value; show the last 4 characters only if the value is long enough to hide the rest."""
    if value is None:
        return MASK
    text = str(value)
    if text.startswith(MASK):
        return text  # already masked
    if text.startswith(ENCRYPTED_PREFIX):
        return MASK  # an agent's screen never shows ciphertext
    compact = "".join(ch for ch in text if not ch.isspace() and ch != "-")
    return MASK + compact[-4:] if len(compact) >= 10 else MASK


def _make_fernet(settings: SessionSettings) -> Any | None:
    if settings.encryption_key is None:
        return None
    try:
        from cryptography.fernet import Fernet  # optional: only if the admin installed it
    except ImportError:
        log.warning(
            "session.encryption_key is set but `cryptography` is not installed: masking sensitive slots"
        )
        return None
    try:
        return Fernet(settings.encryption_key.get_secret_value().encode())
    except ValueError as e:
        raise ValueError(f"session.encryption_key is not a valid Fernet key: {e}") from None


class SlotProtector:
    def __init__(self, settings: SessionSettings) -> None:
        self.default_sensitive = frozenset(s.lower() for s in settings.sensitive_slots)
        self._fernet = _make_fernet(settings)

    @property
    def encrypts(self) -> bool:
        return self._fernet is not None

    def is_sensitive(self, name: str, extra: Iterable[str] = ()) -> bool:
        return name.lower() in self.default_sensitive or name.lower() in {e.lower() for e in extra}

    def protect_value(self, value: Any) -> str:
        """What goes to Redis for a sensitive value."""
        if isinstance(value, str) and value.startswith((MASK, ENCRYPTED_PREFIX)):
            return value  # already protected: saving a record twice must not double-encrypt
        if self._fernet is not None:
            return ENCRYPTED_PREFIX + self._fernet.encrypt(str(value).encode()).decode()
        return mask_value(value)

    def protect(self, slots: dict[str, Any], extra: Iterable[str] = ()) -> dict[str, Any]:
        extra = list(extra)
        return {k: self.protect_value(v) if self.is_sensitive(k, extra) else v for k, v in slots.items()}

    def for_display(self, slots: dict[str, Any], extra: Iterable[str] = ()) -> dict[str, Any]:
        """What a human agent sees: sensitive values always masked (never the ciphertext)."""
        extra = list(extra)
        return {k: mask_value(v) if self.is_sensitive(k, extra) else v for k, v in slots.items()}

    def reveal(self, value: str) -> str:
        """Decrypt an ``enc:`` value (needs the key); masked values cannot be recovered."""
        if self._fernet is None or not value.startswith(ENCRYPTED_PREFIX):
            raise ValueError("value is masked or no encryption key is configured: it cannot be revealed")
        return self._fernet.decrypt(value[len(ENCRYPTED_PREFIX) :].encode()).decode()

    def protect_conversation_state(self, state: dict[str, Any], extra: Iterable[str] = ()) -> dict[str, Any]:
        """The dialogue state is opaque except that a top-level ``slots`` dict may hold sensitive values."""
        slots = state.get("slots")
        if not isinstance(slots, dict):
            return state
        return {**state, "slots": self.protect(slots, extra)}
