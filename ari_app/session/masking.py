"""session: sensitive values never reach Redis (or an agent's screen) in clear.

With ``session.encryption_key`` set, values are Fernet-encrypted (``enc:<token>``, cipher.py) so
a takeover or an authorised back office can recover them; otherwise they are masked, keeping only
the last digits a human needs to confirm ("****1234"). Sensitive means: a slot the flow marks
``sensitive`` or one named like a card/PIN/SSN (session.sensitive_slots), and any value shaped
like a card number or an SSN whatever its slot. Tool results (customer records a backend
returned) are sealed whole with a key, and without one lose their sensitive-named fields.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

from ari_app.dialog.redact import redact_text
from ari_app.session.cipher import ENCRYPTED_PREFIX, RecordCipher, UndecryptableValue
from ari_app.session.settings import SessionSettings

log = logging.getLogger(__name__)

MASK = "****"
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


def looks_secret(value: Any) -> bool:
    """A card number or an SSN, in any slot: redaction would change it."""
    return isinstance(value, str | int) and redact_text(str(value)) != str(value)


class SlotProtector:
    def __init__(self, settings: SessionSettings) -> None:
        self.default_sensitive = frozenset(s.lower() for s in settings.sensitive_slots)
        self.cipher = RecordCipher(settings)

    @property
    def encrypts(self) -> bool:
        return self.cipher.encrypts

    def is_sensitive(self, name: str, extra: Iterable[str] = ()) -> bool:
        return name.lower() in self.default_sensitive or name.lower() in {e.lower() for e in extra}

    def protect_value(self, value: Any) -> str:
        """What goes to Redis for a sensitive value."""
        if isinstance(value, str) and value.startswith((MASK, ENCRYPTED_PREFIX)):
            return value  # already protected: saving a record twice must not double-encrypt
        if self.cipher.encrypts:
            return self.cipher.seal(str(value))
        return mask_value(value)

    def _secret(self, name: str, value: Any, extra: Iterable[str]) -> bool:
        return value is not None and (self.is_sensitive(name, extra) or looks_secret(value))

    def protect(self, slots: dict[str, Any], extra: Iterable[str] = ()) -> dict[str, Any]:
        extra = list(extra)
        return {k: self.protect_value(v) if self._secret(k, v, extra) else v for k, v in slots.items()}

    def for_display(self, slots: dict[str, Any], extra: Iterable[str] = ()) -> dict[str, Any]:
        """What a human agent sees: sensitive values always masked (never the ciphertext)."""
        extra = list(extra)
        return {k: mask_value(v) if self._secret(k, v, extra) else v for k, v in slots.items()}

    def reveal(self, value: str) -> str:
        """Decrypt an ``enc:`` value (needs the key); masked values cannot be recovered."""
        if not self.cipher.encrypts or not value.startswith(ENCRYPTED_PREFIX):
            raise ValueError("value is masked or no encryption key is configured: it cannot be revealed")
        return self.cipher.open(value)

    def _protect_results(self, results: dict[str, Any], extra: list[str]) -> dict[str, Any]:
        """Tool results: sealed whole (a customer record is caller data), or without a key with
        sensitive-named fields masked and card/SSN-shaped strings redacted."""
        if self.cipher.encrypts:
            return {name: v if _sealed(v) else self.cipher.seal(json.dumps(v)) for name, v in results.items()}
        return {name: self._scrub(v, extra) for name, v in results.items()}

    def _scrub(self, value: Any, extra: list[str], key: str = "") -> Any:
        if key and self.is_sensitive(key, extra) and value is not None:
            return mask_value(value)
        if isinstance(value, dict):
            return {k: self._scrub(v, extra, str(k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self._scrub(v, extra) for v in value]
        return redact_text(value) if isinstance(value, str) else value

    def protect_conversation_state(self, state: dict[str, Any], extra: Iterable[str] = ()) -> dict[str, Any]:
        """The dialogue state as the engine writes it (ari_app.dialog.state.ConversationState):
        sensitive values sit in every frame's ``slots``, ``partial`` (half a digit string),
        ``near_miss`` and ``tentative``, tool results in ``results``; a read-back that repeats one
        sits in ``last_prompt``. All of them are encrypted (or masked without a key);
        ``reveal_conversation_state`` undoes it for a takeover. A legacy top-level ``slots``
        dict is protected too."""
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
                    secrets += [str(v) for k, v in values.items() if self._secret(k, v, extra)]
                    f[field] = self.protect(values, extra)
            if isinstance(f.get("results"), dict):
                f["results"] = self._protect_results(f["results"], extra)
            frames.append(f)
        if "frames" in state:
            out["frames"] = frames
        if isinstance(state.get("slots"), dict):
            out["slots"] = self.protect(state["slots"], extra)
        prompt = state.get("last_prompt")
        clear = [s for s in secrets if len(s) >= 2 and not s.startswith((MASK, ENCRYPTED_PREFIX))]
        if isinstance(prompt, str) and (any(s in prompt for s in clear) or looks_secret(prompt)):
            out["last_prompt"] = self.protect_value(prompt) if self.cipher.encrypts else ""
        return out

    def reveal_conversation_state(self, state: dict[str, Any]) -> dict[str, Any]:
        """The values a resumed call needs, decrypted in memory (masked ones stay masked). A
        state an older version wrote in clear is returned as it is (sealed on its next write)."""
        out = dict(state)

        def clear(v: Any) -> Any:
            if not _sealed(v):
                return v
            try:
                return self.cipher.open(v)
            except UndecryptableValue:  # a rotated-away key: the value is lost, not the call
                log.warning("session: a sensitive value could not be decrypted (key changed?)")
                return MASK

        def results(values: dict[str, Any]) -> dict[str, Any]:
            opened = {k: clear(v) for k, v in values.items()}
            return {k: json.loads(v) if _sealed(values[k]) and v != MASK else v for k, v in opened.items()}

        frames = []
        for f in state.get("frames") or []:
            if isinstance(f, dict):
                f = {**f, **{fld: {k: clear(v) for k, v in f[fld].items()}
                             for fld in _SLOT_FIELDS if isinstance(f.get(fld), dict)}}  # fmt: skip
                if isinstance(f.get("results"), dict):
                    f["results"] = results(f["results"])
            frames.append(f)
        out["frames"] = frames
        if "last_prompt" in state:
            out["last_prompt"] = clear(state["last_prompt"])
        return out


def _sealed(v: Any) -> bool:
    return isinstance(v, str) and v.startswith(ENCRYPTED_PREFIX)
