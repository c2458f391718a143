"""Call state in Redis (SessionStore), instance leases for crash takeover, per-call event streams."""

from ari_app.session.lease import LeaseManager
from ari_app.session.models import CallRecord, CallStatus, TranscriptEntry
from ari_app.session.resilient import SessionStoreUnavailable
from ari_app.session.settings import SessionSettings
from ari_app.session.store import CallEvent, SessionCorrupt, SessionNotFound, SessionStore

__all__ = [
    "CallEvent", "CallRecord", "CallStatus", "LeaseManager", "SessionCorrupt", "SessionNotFound",
    "SessionSettings", "SessionStore", "SessionStoreUnavailable", "TranscriptEntry",
]  # fmt: skip
