"""session: the one place keys turn into ciphertext (Fernet) and keyed lookups (HMAC).

Why here: call records (slots, tool results), campaign contacts and the do-not-call list all
keep caller data in Redis. They share ``session.encryption_key`` (comma-separated: the first key
encrypts, every key decrypts), so rotating it is one setting for everything. A value written in
clear by an older version is read as it is and sealed on its next write.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from ari_app.session.settings import SessionSettings

ENCRYPTED_PREFIX = "enc:"
DIGEST_PREFIX = "h:"


class CipherUnavailable(Exception):
    """Something must be stored sealed and no encryption key is configured."""


class UndecryptableValue(Exception):
    """Ciphertext none of the configured keys opens (the key that wrote it was rotated away)."""


def _keys(settings: SessionSettings) -> list[bytes]:
    if settings.encryption_key is None:
        return []
    return [k.strip().encode() for k in settings.encryption_key.get_secret_value().split(",") if k.strip()]


class RecordCipher:
    def __init__(self, settings: SessionSettings) -> None:
        self._keys = _keys(settings)
        self._fernet: Any | None = None
        if self._keys:
            from cryptography.fernet import Fernet, MultiFernet

            try:
                self._fernet = MultiFernet([Fernet(k) for k in self._keys])
            except ValueError as e:
                raise ValueError(
                    f"session.encryption_key is not a valid Fernet key (or comma-separated list of them): {e}"
                ) from None
        # HMAC keys derived from the Fernet keys (never the keys themselves): a digest is a lookup
        # handle, and a leaked digest must not help with the ciphertext.
        self._mac_keys = [hashlib.sha256(b"ari-app lookup\0" + k).digest() for k in self._keys]

    @property
    def encrypts(self) -> bool:
        return self._fernet is not None

    def require(self, what: str) -> None:
        if self._fernet is None:
            raise CipherUnavailable(
                f"{what}: caller data, only stored encrypted; set session.encryption_key "
                "(ARI_APP_SESSION__ENCRYPTION_KEY; the embedded stack generates one)"
            )

    def seal(self, text: str) -> str:
        """``enc:<token>``; text already sealed is returned as it is (never encrypted twice)."""
        if text.startswith(ENCRYPTED_PREFIX):
            return text
        self.require("this value")
        assert self._fernet is not None
        return ENCRYPTED_PREFIX + self._fernet.encrypt(text.encode()).decode()

    def open(self, text: str) -> str:
        """The clear text of a sealed value; a value an older version wrote in clear passes."""
        if not text.startswith(ENCRYPTED_PREFIX):
            return text
        if self._fernet is None:
            raise UndecryptableValue("the value is encrypted and no session.encryption_key is set")
        from cryptography.fernet import InvalidToken

        try:
            return str(self._fernet.decrypt(text[len(ENCRYPTED_PREFIX) :].encode()).decode())
        except InvalidToken:
            raise UndecryptableValue("no configured session.encryption_key opens this value") from None

    def digest(self, text: str) -> str:
        """A keyed lookup handle (the first key): equal texts give equal digests."""
        return self.digests(text)[0]

    def digests(self, text: str) -> list[str]:
        """One digest per configured key, the current one first (lookups across a rotation)."""
        self.require("a looked-up value")
        return [
            DIGEST_PREFIX + hmac.new(k, text.encode(), hashlib.sha256).hexdigest() for k in self._mac_keys
        ]
