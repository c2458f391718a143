"""The context record a human agent's screen-pop shows: who calls, why, what we collected."""

from __future__ import annotations

from typing import Any

from ari_app.session.masking import SlotProtector
from ari_app.session.models import CallRecord


def context_from_record(record: CallRecord, protector: SlotProtector) -> dict[str, Any]:
    return _context(record.model_dump(mode="json"), protector, problems=[])


def context_from_salvage(
    salvaged: dict[str, Any], problems: list[str], protector: SlotProtector
) -> dict[str, Any]:
    """A corrupt record still gives the agent whatever could be read, flagged as incomplete."""
    return _context(salvaged, protector, problems)


def _context(r: dict[str, Any], protector: SlotProtector, problems: list[str]) -> dict[str, Any]:
    transfer = r.get("transfer") if isinstance(r.get("transfer"), dict) else None
    slots = r.get("slots") if isinstance(r.get("slots"), dict) else {}
    sensitive = [s for s in r.get("sensitive_slots") or [] if isinstance(s, str)]
    transcript = [
        {k: t.get(k) for k in ("at", "speaker", "text", "confidence", "redacted")}
        for t in r.get("transcript") or []
        if isinstance(t, dict)
    ]
    return {
        "session_id": r.get("session_id"),
        "status": r.get("status"),
        "caller": {"number": r.get("caller_number"), "name": r.get("caller_name")},
        "called_number": r.get("called_number"),
        "started_at": r.get("started_at"),
        "intent": r.get("intent"),
        "reason": (transfer or {}).get("reason") or r.get("end_reason"),
        "summary": r.get("summary"),
        # Masked again here: whatever is stored (masked or encrypted), a screen never shows it.
        "slots": protector.for_display(slots, sensitive),
        "transcript": transcript,
        "transfer": transfer,
        "incomplete": bool(problems),
        "problems": problems,
    }
