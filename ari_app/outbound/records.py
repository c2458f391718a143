"""outbound: what the campaign state hands out — a claim, a campaign's status, a contact's result.

Why apart from ``state``: the dialer, the results export and whoever shows progress (CLI, web)
read these without needing the Redis side.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ari_app.outbound.contacts import Contact
from ari_app.session.cipher import RecordCipher

CONTACT_STATUSES = ("pending", "dialing", "deferred", "done", "failed", "dnc", "interrupted")
FINAL = frozenset({"done", "failed", "dnc", "interrupted"})


@dataclass(frozen=True)
class Claim:
    contact: Contact
    attempt_id: str  # also what the originator names the call by (see Dialer, recover)
    attempt: int  # 1 for the first


@dataclass(frozen=True)
class CampaignStatus:
    name: str
    status: str
    reason: str = ""
    counts: dict[str, int] = field(default_factory=dict)  # contact status -> how many
    outcomes: dict[str, int] = field(default_factory=dict)  # attempt outcome -> how many
    attempts: int = 0
    created: float = 0.0
    updated: float = 0.0

    @property
    def remaining(self) -> int:
        return sum(self.counts.get(s, 0) for s in ("pending", "deferred", "dialing"))


@dataclass(frozen=True)
class ContactResult:
    id: str
    number: str
    name: str | None
    status: str
    attempts: int
    outcome: str = ""
    cause: int | None = None
    flow_result: dict[str, Any] | None = None
    duration_s: float = 0.0
    session_id: str = ""
    next_at: float | None = None
    reason: str = ""
    attempt_id: str = ""  # of the last attempt that ended


@dataclass
class Recovery:
    returned: list[str] = field(default_factory=list)  # claimed, never originated: queued again
    live: list[str] = field(default_factory=list)  # their call is still up: left dialing
    interrupted: list[str] = field(default_factory=list)


def field_str(raw: dict[bytes, bytes], name: str, default: str = "") -> str:
    v = raw.get(name.encode())
    return v.decode() if v is not None else default


def contact_result(raw: dict[bytes, bytes], cipher: RecordCipher) -> ContactResult:
    """A contact's hash, opened: its details and flow result are stored sealed (caller data)."""
    contact = Contact.model_validate_json(cipher.open(raw[b"contact"].decode()))
    cause, next_at = field_str(raw, "cause"), field_str(raw, "next_at")
    flow = cipher.open(field_str(raw, "flow_result"))
    status = field_str(raw, "status")
    return ContactResult(
        contact.id, contact.number, contact.name, status, int(field_str(raw, "attempts", "0")),
        field_str(raw, "outcome"), int(cause) if cause else None, json.loads(flow) if flow else None,
        float(field_str(raw, "duration_s", "0") or 0), field_str(raw, "session_id"),
        float(next_at) if next_at and status in ("pending", "deferred") else None,
        field_str(raw, "reason"), field_str(raw, "last_attempt_id"),
    )  # fmt: skip
