"""speech server: every error a client can cause is a JSON body in OpenAI's shape naming the field.

``{"error": {"message", "type", "param"}}`` with status 400 (401 for the token, 404/405/413 for
routes and sizes); an unexpected failure is a 500 with a pointer to the server log, never a traceback.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
STREAMING = web.RequestKey("streaming", bool)  # set once audio is on its way: no error body possible
OPEN_PATHS = frozenset({"/healthz"})  # a load balancer's probe needs no token


class BadRequest(Exception):
    """A client error: ``param`` is the request field at fault (None: the request as a whole)."""

    def __init__(self, message: str, param: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.param, self.status = message, param, status


def api_error(status: int, message: str, param: str | None = None, kind: str | None = None) -> web.Response:
    kind = kind or ("server_error" if status >= 500 else "invalid_request_error")
    return web.json_response({"error": {"message": message, "type": kind, "param": param}}, status=status)


def error_middleware(api_key: str) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if api_key and request.path not in OPEN_PATHS:
            given = request.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {api_key}".encode()):
                return api_error(401, "missing or wrong bearer token (Authorization: Bearer ...)")
        try:
            return await handler(request)
        except BadRequest as e:
            return api_error(e.status, e.message, e.param)
        except web.HTTPRequestEntityTooLarge as e:
            return api_error(413, f"request body too large ({e.text})", "file")
        except web.HTTPException as e:  # unknown route, wrong method
            if e.status < 400:
                raise
            return api_error(e.status, f"{e.reason}: {request.method} {request.path}")
        except Exception:
            if request.get(STREAMING):
                raise  # headers are sent: only a cut connection can tell the client it failed
            log.exception("speech server: %s %s failed", request.method, request.path)
            return api_error(500, "internal error; the server log has the details")

    return middleware
