"""Structural escalation: when the engine hands the caller to a person, and with what note.

This is code, not prompt text, so it cannot be talked out of: asking for a person (or pressing
0), too many failed understandings or silences in a row, repeated low confidence, anger, a tool
that failed after its fallback, or a flow's own transfer step. Each yields a ``Transfer`` with a
machine-readable reason and a one-line summary for the agent who picks up.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ari_app.dialog.redact import redact_slots
from ari_app.dialog.state import ConversationState, Transfer

REASONS = ("caller_request", "no_match", "no_input", "low_confidence", "anger", "tool_failure", "flow")


class PolicySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_no_match: int = Field(default=3, ge=1)  # failed understandings in a row -> transfer
    max_no_input: int = Field(default=3, ge=1)  # silences in a row -> transfer
    max_low_confidence: int = Field(default=3, ge=1)
    # Whisper's confidence (mean token probability) runs low on 8 kHz audio: clear, correct short
    # answers score 0.45-0.7 with the 10 s context decoder, so only below 0.3 do we ask again.
    asr_confidence_min: float = Field(default=0.3, ge=0, le=1)
    intent_confidence_min: float = Field(default=0.5, ge=0, le=1)
    # Below the minimum but above this fraction of it: ask "did you want to ...?" instead of no-match.
    intent_suggest_ratio: float = Field(default=0.7, ge=0, le=1)
    clarify_margin: float = Field(default=0.05, ge=0, le=1)  # top two closer than this -> ask which
    transfer_on_anger: bool = True
    human_words: list[str] = Field(
        default_factory=lambda: [
            "agent", "representative", "human", "real person", "a person", "operator", "someone",
            "speak to somebody", "customer service", "live person",
        ]
    )  # fmt: skip
    anger_words: list[str] = Field(
        default_factory=lambda: [
            "ridiculous", "useless", "stupid", "furious", "angry", "fed up", "sick of", "terrible",
            "damn", "hell", "shit", "fuck", "fucking", "crap", "bullshit", "idiot", "pissed",
        ]
    )  # fmt: skip
    # None: the queue from the config (transfer.queue); a name here overrides it for escalations.
    default_queue: str | None = None
    default_endpoint: str | None = None


def _for_agent(label: str) -> str:
    return re.sub(r"\b(?:your|the|my)\s+", "", label).strip()


def _words_regex(words: list[str]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"\b(?:{alternatives})\b", re.I)


class EscalationPolicy:
    def __init__(self, settings: PolicySettings) -> None:
        self.settings = settings
        self._human = _words_regex(settings.human_words)
        self._anger = _words_regex(settings.anger_words)
        # "talk to someone" alone, not "someone charged my card": the person word must follow a request.
        self._asks = re.compile(
            r"\b(?:talk|speak|connect|transfer|put|get|give|want|need|let)\b.{0,30}$|^\W*\w*\W*$", re.I
        )

    def wants_person(self, text: str | None) -> bool:
        if not text:
            return False
        m = self._human.search(text)
        if not m:
            return False
        before = text[: m.start()]
        return bool(self._asks.search(before)) or len(text.split()) <= 3

    def is_angry(self, text: str | None) -> bool:
        return bool(self.settings.transfer_on_anger and text and self._anger.search(text))

    def transfer(
        self,
        reason: str,
        state: ConversationState,
        *,
        sensitive: set[str],
        labels: dict[str, str],
        queue: str | None = None,
        endpoint: str | None = None,
        summary: str | None = None,
        detail: str = "",
    ) -> Transfer:
        frame = state.frame
        slots = redact_slots(frame.slots, sensitive) if frame else {}
        flow_label = labels.get(frame.flow, frame.flow) if frame else None
        if summary is None:
            what = {
                "caller_request": "Caller asked for a person",
                "no_match": "I could not understand the caller",
                "no_input": "The caller went silent",
                "low_confidence": "Speech recognition was unreliable",
                "anger": "The caller sounds upset",
                "tool_failure": "A backend system failed",
                "flow": "The flow hands over",
            }.get(reason, reason)
            # Labels are worded for the caller ("your order status"); the agent reads "task: order status".
            where = f" (task: {_for_agent(flow_label)})" if flow_label else ""
            got = ", ".join(f"{k}={v}" for k, v in slots.items() if v is not None)
            summary = (
                f"{what}{where}" + (f" ({detail})" if detail else "") + (f"; collected: {got}" if got else "")
            )
        context: dict[str, Any] = {
            "reason": reason,
            "flow": frame.flow if frame else None,
            "slots": slots,
            "caller_number": state.caller_number,
            "transcript": state.transcript[-10:],
        }
        state.ended = True
        return Transfer(
            reason=reason,
            queue=queue or (None if endpoint else self.settings.default_queue),
            endpoint=endpoint or self.settings.default_endpoint,
            summary=summary,
            context=context,
        )
