"""What we keep about a call: the record shape stored in Redis and shown to human agents."""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

CallStatus = Literal["active", "transferring", "transferred", "ended"]
Speaker = Literal["caller", "agent", "system"]


def now() -> float:
    """Wall-clock seconds (epoch): records are read by other hosts, so no monotonic clocks."""
    return time.time()


class TranscriptEntry(BaseModel):
    model_config = ConfigDict(extra="ignore")

    at: float = Field(default_factory=now)
    speaker: Speaker
    text: str
    confidence: float | None = None
    # True when the text was altered before storage (e.g. a card number spoken by the caller).
    redacted: bool = False


class CallRecord(BaseModel):
    # "ignore" so a record written by a newer version still loads in an older one during a rollout.
    model_config = ConfigDict(extra="ignore")

    session_id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    channel_id: str
    bridge_id: str | None = None
    media_channel_id: str | None = None
    agent_channel_id: str | None = None  # the human's leg once a warm transfer connected
    caller_number: str | None = None
    caller_name: str | None = None
    called_number: str | None = None
    started_at: float = Field(default_factory=now)
    ended_at: float | None = None
    end_reason: str | None = None
    status: CallStatus = "active"
    # Filled from the lease key when read (the lease is the truth; these are for display).
    owner_instance: str | None = None
    lease_expires_at: float | None = None
    # Opaque to the store: the dialogue's ConversationState.to_dict().
    conversation_state: dict[str, Any] = Field(default_factory=dict)
    slots: dict[str, Any] = Field(default_factory=dict)
    # Slot names this flow marks sensitive, on top of SessionSettings.sensitive_slots.
    sensitive_slots: list[str] = Field(default_factory=list)
    transcript: list[TranscriptEntry] = Field(default_factory=list)
    # One dict of timings per turn (e.g. {"asr_ms": 180, "nlu_ms": 12, "tts_first_audio_ms": 240}).
    metrics: list[dict[str, Any]] = Field(default_factory=list)
    # Number of turns saved; save_turn uses it to make replays after a Redis outage idempotent.
    turn: int = 0
    transfer: dict[str, Any] | None = None
    intent: str | None = None
    summary: str | None = None


# Fields stored one per Redis hash field. The transcript and metrics live in Redis lists so a
# turn appends a few hundred bytes instead of rewriting the whole call.
HASH_FIELDS = tuple(f for f in CallRecord.model_fields if f not in ("transcript", "metrics"))
# Fields save_turn/update may not touch through update(): they have their own paths.
NOT_UPDATABLE = frozenset(
    {"session_id", "transcript", "metrics", "turn", "owner_instance", "lease_expires_at"}
)
