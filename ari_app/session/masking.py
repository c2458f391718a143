"""Sensitive slot values never reach Redis (or an agent's screen) in clear.

With ``session.encryption_key`` set, values are Fernet-encrypted (``enc:<token>``) so an authorised back office can recover them; otherwise
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
_SLOT_FIELDS = ("slots", "partial", "near_miss", "tentative")  # per-frame dicts keyed by slot name


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
    """Fernet over the configured keys: the first encrypts, every one decrypts (rotation: put
    the new key first, keep the old ones until the records they wrote have expired)."""
    if settings.encryption_key is None:
        return None
    from cryptography.fernet import Fernet, MultiFernet

    keys = [k.strip() for k in settings.encryption_key.get_secret_value().split(",") if k.strip()]
    try:
        return MultiFernet([Fernet(k.encode()) for k in keys])
    except ValueError as e:
        raise ValueError(
            f"session.encryption_key is not a valid Fernet key (or comma-separated list of them): {e}"
        ) from None


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
        """The dialogue state as the engine writes it (ari_app.dialog.state.ConversationState):
        sensitive values sit in every frame's ``slots``, ``partial`` (half a digit string) and
        ``near_miss``; a read-back that repeats one sits in ``last_prompt``. All of them are
        encrypted (or masked without a key); ``reveal_conversation_state`` undoes it for a
        takeover. A legacy top-level ``slots`` dict is protected too."""
        extra = list(extra)
        out = dict(state)
        secrets: list[str] = []
        frames = []
        for frame in state.get("frames") or []:
            if not isinstance(frame, dict):
                frames.append(frame)
                continue
            f = dict(frame)
            for field in _SLOT_FIELDS:
                values = f.get(field)
                if isinstance(values, dict):
                    secrets += [
                        str(v) for k, v in values.items() if self.is_sensitive(k, extra) and v is not None
                    ]
                    f[field] = self.protect(values, extra)
            frames.append(f)
        if "frames" in state:
            out["frames"] = frames
        if isinstance(state.get("slots"), dict):
            out["slots"] = self.protect(state["slots"], extra)
        prompt = state.get("last_prompt")
        clear = [s for s in secrets if len(s) >= 2 and not s.startswith((MASK, ENCRYPTED_PREFIX))]
        if isinstance(prompt, str) and any(s in prompt for s in clear):
            out["last_prompt"] = self.protect_value(prompt) if self._fernet is not None else ""
        return out

    def reveal_conversation_state(self, state: dict[str, Any]) -> dict[str, Any]:
        """The values a resumed call needs, decrypted in memory (masked ones stay masked)."""
        out = dict(state)

        def clear(v: Any) -> Any:
            if isinstance(v, str) and v.startswith(ENCRYPTED_PREFIX) and self._fernet is not None:
                try:
                    return self.reveal(v)
                except Exception:  # a rotated-away key: the value is lost, not the call
                    log.warning("session: a sensitive value could not be decrypted (key changed?)")
                    return MASK
            return v

        out["frames"] = [
            {**f, **{fld: {k: clear(v) for k, v in f[fld].items()} for fld in _SLOT_FIELDS if isinstance(f.get(fld), dict)}}
            if isinstance(f, dict) else f
            for f in state.get("frames") or []
        ]  # fmt: skip
        if "last_prompt" in state:
            out["last_prompt"] = clear(state["last_prompt"])
        return out
