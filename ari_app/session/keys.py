"""Redis key names, in one place so the store, leases and tests agree."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    prefix: str = "iva"

    def call(self, session_id: str) -> str:
        return f"{self.prefix}:call:{session_id}"

    def transcript(self, session_id: str) -> str:
        return f"{self.prefix}:call:{session_id}:transcript"

    def metrics(self, session_id: str) -> str:
        return f"{self.prefix}:call:{session_id}:metrics"

    def events(self, session_id: str) -> str:
        return f"{self.prefix}:call:{session_id}:events"

    def channel(self, channel_id: str) -> str:
        return f"{self.prefix}:channel:{channel_id}"

    def lease(self, session_id: str) -> str:
        return f"{self.prefix}:lease:{session_id}"

    @property
    def active(self) -> str:
        """Set of session ids not yet ended: the candidates for orphan takeover."""
        return f"{self.prefix}:calls:active"

    def all_for_call(self, session_id: str) -> tuple[str, str, str, str]:
        return (self.call(session_id), self.transcript(session_id), self.metrics(session_id),
                self.events(session_id))  # fmt: skip
