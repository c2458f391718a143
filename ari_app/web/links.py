"""web: per-call, expiring signed links to the agent page (no shared token in any URL).

Why: one shared token in a query string opens every call's page for as long as the token lives
and ends up in browser history and proxy logs. A link signed for one session that expires
(``<expiry>.<HMAC-SHA256(web.token, session + expiry)>``) opens that call only, for a shift.
The agent's phone gets it in the X-IVA-Link SIP header with the transfer.
"""

from __future__ import annotations

import hashlib
import hmac
import time


def sign(session_id: str, secret: str, ttl_s: float, now: float | None = None) -> str:
    expiry = int((time.time() if now is None else now) + ttl_s)
    return f"{expiry}.{_mac(session_id, expiry, secret)}"


def verify(session_id: str, link: str, secret: str, now: float | None = None) -> bool:
    expiry_text, _, mac = link.partition(".")
    if not expiry_text.isdigit() or not mac:
        return False
    if int(expiry_text) < (time.time() if now is None else now):
        return False
    return hmac.compare_digest(mac, _mac(session_id, int(expiry_text), secret))


def _mac(session_id: str, expiry: int, secret: str) -> str:
    return hmac.new(secret.encode(), f"{session_id}\n{expiry}".encode(), hashlib.sha256).hexdigest()
