"""The ari room: a thin typed async client for Asterisk's REST Interface and its events."""

from ari_app.ari.client import AriClient
from ari_app.ari.errors import AriConnectionError, AriError, AriNotFound, AriUnprocessable
from ari_app.ari.events import EventStream
from ari_app.ari.models import Bridge, Channel, Event

__all__ = [
    "AriClient",
    "AriConnectionError",
    "AriError",
    "AriNotFound",
    "AriUnprocessable",
    "Bridge",
    "Channel",
    "Event",
    "EventStream",
]
