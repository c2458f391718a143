"""Settings of the session store (call state in Redis) and of instance leases."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

# Slot names that hold card numbers, identity numbers, secrets: stored masked unless a flow
# marks more (CallRecord.sensitive_slots) or the admin changes this list.
DEFAULT_SENSITIVE_SLOTS = (
    "card_number", "credit_card", "cvv", "cvc", "pin", "password", "ssn",
    "social_security_number", "iban", "account_number", "passcode", "security_answer",
)  # fmt: skip


class SessionSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Every key we write starts with this (tests use their own prefix to stay apart).
    key_prefix: str = Field(default="iva", pattern=r"^[A-Za-z0-9_.:-]+$")
    # How long an ended call's record, transcript and events stay in Redis.
    retention_seconds: int = Field(default=7 * 24 * 3600, ge=1)
    # Per-call event stream is trimmed (approximately) to this many entries.
    events_maxlen: int = Field(default=1000, ge=10)
    # Writes kept in memory while Redis is unreachable; beyond this, new writes are dropped
    # (and counted) rather than letting memory grow without bound.
    buffer_max_writes: int = Field(default=10_000, ge=1)
    # Redis socket timeouts: small, because a hung Redis must not stall the audio path.
    socket_timeout: float = Field(default=0.5, gt=0)
    connect_timeout: float = Field(default=1.0, gt=0)
    reconnect_min: float = Field(default=0.1, gt=0)
    reconnect_max: float = Field(default=3.0, gt=0)
    # Leases: the owner renews every heartbeat_interval; a lease dies lease_ttl after the last one.
    heartbeat_interval: float = Field(default=2.0, gt=0)
    lease_ttl: float = Field(default=6.0, gt=0)
    sensitive_slots: list[str] = Field(default_factory=lambda: list(DEFAULT_SENSITIVE_SLOTS))
    # Fernet key (urlsafe base64, 32 bytes) to store sensitive slots encrypted instead of masked.
    # Without one they are masked: nothing can recover them (a takeover asks the caller again).
    # Several keys, comma-separated: the first encrypts, all decrypt (key rotation). The embedded
    # stack generates one (see config.Settings._embedded_secrets); set your own for production
    # and the same on every instance, or a takeover cannot read what another instance wrote.
    encryption_key: SecretStr | None = None

    @field_validator("encryption_key")
    @classmethod
    def _fernet_keys(cls, v: SecretStr | None) -> SecretStr | None:
        """A bad key stops the start-up (no call is accepted and nothing is written in clear)."""
        if v is None:
            return v
        from cryptography.fernet import Fernet

        keys = [k.strip() for k in v.get_secret_value().split(",") if k.strip()]
        if not keys:
            raise ValueError("is empty: give a Fernet key, or leave it unset to mask instead")
        for n, key in enumerate(keys, 1):
            try:
                Fernet(key.encode())
            except ValueError:
                raise ValueError(
                    f"key {n} of {len(keys)} is not a Fernet key (32 url-safe base64 bytes; make one with "
                    "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
                ) from None
        return v

    @field_validator("lease_ttl")
    @classmethod
    def _ttl_covers_heartbeats(cls, v: float, info) -> float:  # type: ignore[no-untyped-def]
        beat = info.data.get("heartbeat_interval", 2.0)
        if v < 2 * beat:
            raise ValueError(
                f"must be at least twice heartbeat_interval ({beat} s) so one lost beat is survived"
            )
        return v
