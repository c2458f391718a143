"""What of a dialogue's Transfer may travel with the call: the request for warm_transfer.

Channel variables become SIP headers on the agent's INVITE (dialplan/ari_app.conf), so only
non-sensitive, flat slot values go there, and the summary loses any sensitive slot (a masked
``dob=****0412`` still tells month and day). The full context stays in Redis behind the token.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ari_app.dialog.state import Transfer
from ari_app.transfer.warm import TransferRequest

_COLLECTED = "; collected: "


def safe_slots(slots: Any, sensitive: Iterable[str]) -> dict[str, str]:
    """Slots that may leave the box: scalar, set, not sensitive by name, not already masked."""
    if not isinstance(slots, dict):
        return {}
    names = {s.lower() for s in sensitive}
    return {
        str(k): str(v)
        for k, v in slots.items()
        if v is not None
        and isinstance(v, str | int | float | bool)
        and str(k).lower() not in names
        and not str(v).startswith("****")
    }


def header_summary(summary: str, slots: dict[str, str]) -> str:
    """The policy's summary with its "collected:" part rebuilt from the safe slots only."""
    head = summary.split(_COLLECTED, 1)[0]
    got = ", ".join(f"{k}={v}" for k, v in slots.items())
    return head + (_COLLECTED + got if got else "")


def transfer_request(
    t: Transfer, *, default_queue: str, timeout: float, sensitive: Iterable[str] = ()
) -> TransferRequest:
    slots = safe_slots(t.context.get("slots"), sensitive)
    return TransferRequest(
        reason=t.reason,
        queue=t.queue or (None if t.endpoint else default_queue),
        endpoint=t.endpoint,
        summary=header_summary(t.summary, slots),
        intent=str(t.context.get("intent") or t.context.get("flow") or ""),
        context=slots,
        timeout=timeout,
    )
