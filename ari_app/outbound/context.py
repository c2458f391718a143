"""outbound: what an outbound call carries from the dialer to the conversation.

A leaf module (no imports from the call path), so ``calls.Call`` can hold one without the
campaign machinery coming along.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

AmdMode = Literal["agent", "asterisk", "off"]


@dataclass
class OutboundContext:
    campaign: str
    contact_id: str
    attempt_id: str
    number: str
    flow: str  # the flow the callee gets when a person answers
    slots: dict[str, Any] = field(default_factory=dict)  # the contact's data, known before the call
    voicemail: str | None = None  # the message for an answering machine (None: hang up on one)
    amd: AmdMode = "agent"
    asterisk_verdict: str | None = None  # AMDSTATUS from Asterisk's AMD(), when it ran
    # Filled in by the conversation, read by the dialer when the call is over:
    answered_by: str | None = None  # human | machine | unsure
    amd_reason: str = ""
    message_left: bool = False
