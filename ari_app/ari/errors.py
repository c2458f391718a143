"""Typed ARI errors: every HTTP failure carries the ARI status and message."""

from __future__ import annotations


class AriError(Exception):
    def __init__(self, status: int, message: str, method: str, path: str) -> None:
        super().__init__(f"ARI {method} {path} -> {status}: {message}")
        self.status = status
        self.message = message
        self.method = method
        self.path = path


class AriBadRequest(AriError):
    """400: a parameter was wrong."""


class AriNotFound(AriError):
    """404: the channel/bridge/playback does not exist (often: it just hung up)."""


class AriConflict(AriError):
    """409: e.g. a bridge or channel id already exists."""


class AriUnprocessable(AriError):
    """422: e.g. 'Channel not in Stasis application'."""


class AriConnectionError(Exception):
    """Asterisk could not be reached at all (refused, timeout, wrong credentials)."""


_BY_STATUS: dict[int, type[AriError]] = {
    400: AriBadRequest,
    404: AriNotFound,
    409: AriConflict,
    422: AriUnprocessable,
}


def error_for(status: int, message: str, method: str, path: str) -> AriError:
    return _BY_STATUS.get(status, AriError)(status, message, method, path)
