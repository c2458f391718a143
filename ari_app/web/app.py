"""The agent-facing web app: context API for screen-pops, the agent page, health and metrics.

The agent page is static HTML + JS that fetches the context JSON and renders it with
``textContent`` only (never innerHTML), under a strict Content-Security-Policy: caller speech
and slot values can hold anything, including markup, and must show up as plain text.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, generate_latest

from ari_app.session.store import SessionCorrupt, SessionStore, SessionStoreUnavailable
from ari_app.web import links
from ari_app.web.context import context_from_record, context_from_salvage
from ari_app.web.settings import WebSettings

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
CONTEXT_REQUESTS = Counter("iva_context_requests", "Context API / agent page requests", ["result"])

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the page URL carries the call's signed link
    "Cache-Control": "no-store",
}

STORE_KEY = web.AppKey("store", SessionStore)
# name -> ok, for /readyz (ARI connected and the app registered, Redis reachable, models loaded)
READY_KEY = web.AppKey("ready", Callable[[], dict[str, bool]])
SETTINGS_KEY = web.AppKey("web_settings", WebSettings)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=SECURITY_HEADERS)


def _bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else ""


def _check_access(request: web.Request, *, page: bool = False) -> web.Response | None:
    """None if the request may see this call: the back-office token in the Authorization header,
    or this session's signed link (the page's ?link=, the API's X-IVA-Link header)."""
    configured = request.app[SETTINGS_KEY].token
    if configured is None:
        return _error(503, "the context API is disabled: set web.token in the configuration")
    secret = configured.get_secret_value()
    given = _bearer(request)
    # Constant-time: the comparison must not reveal how many leading characters were right.
    if given and hmac.compare_digest(given.encode(), secret.encode()):
        return None
    link = request.query.get("link", "") if page else request.headers.get("X-IVA-Link", "")
    if link and links.verify(request.match_info["session_id"], link, secret):
        return None
    CONTEXT_REQUESTS.labels("unauthorized").inc()
    how = "a signed link for this call (?link=)" if page else "Authorization: Bearer <token> or X-IVA-Link"
    return web.json_response(
        {"error": f"missing, wrong or expired credentials: use {how}"},
        status=401,
        headers={**SECURITY_HEADERS, "WWW-Authenticate": "Bearer"},
    )


async def context_handler(request: web.Request) -> web.Response:
    if denied := _check_access(request):
        return denied
    store = request.app[STORE_KEY]
    session_id = request.match_info["session_id"]
    try:
        record = await store.get(session_id)
    except SessionCorrupt as e:
        CONTEXT_REQUESTS.labels("incomplete").inc()
        body: dict[str, Any] = context_from_salvage(e.salvaged, e.problems, store.protector)
    except SessionStoreUnavailable as e:
        CONTEXT_REQUESTS.labels("unavailable").inc()
        return _error(503, str(e))
    else:
        if record is None:
            CONTEXT_REQUESTS.labels("not_found").inc()
            return _error(404, f"no call {session_id!r} (unknown, or expired after it ended)")
        CONTEXT_REQUESTS.labels("ok").inc()
        body = context_from_record(record, store.protector)
    body["refresh_seconds"] = request.app[SETTINGS_KEY].page_refresh
    return web.json_response(body, headers=SECURITY_HEADERS)


async def agent_page_handler(request: web.Request) -> web.StreamResponse:
    if denied := _check_access(request, page=True):
        return denied
    return web.FileResponse(STATIC / "agent.html", headers={**SECURITY_HEADERS, "Content-Type": "text/html"})


async def healthz_handler(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    # 200 even while Redis is away: calls go on (degraded); the body says so.
    return web.json_response({
        "status": "ok" if store.healthy else "degraded",
        "redis": "up" if store.healthy else "down",
        "pending_writes": store.pending_writes,
        "instance": store.instance_id,
        "owned_calls": len(store.owned_sessions()),
    })  # fmt: skip


async def readyz_handler(request: web.Request) -> web.Response:
    """200 only when this instance can take calls now; 503 names what is missing."""
    checks = request.app[READY_KEY]()
    ready = all(checks.values())
    return web.json_response({"ready": ready, **checks}, status=200 if ready else 503)


async def metrics_handler(request: web.Request) -> web.Response:
    wanted = request.app[SETTINGS_KEY].metrics_token
    if wanted is not None and not hmac.compare_digest(
        _bearer(request).encode(), wanted.get_secret_value().encode()
    ):
        return web.json_response(
            {"error": "metrics need Authorization: Bearer <web.metrics_token>"}, status=401
        )
    return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})


def create_web_app(
    store: SessionStore,
    settings: WebSettings,
    ready: Callable[[], dict[str, bool]] | None = None,
    campaign_flows: Callable[[], dict[str, list[str]]] | None = None,
) -> web.Application:
    """``campaign_flows`` (flow id -> its inputs) turns on the campaign API (``web.campaigns``)."""
    app = web.Application()
    app[STORE_KEY] = store
    app[READY_KEY] = ready or (lambda: {"redis": store.healthy})
    app[SETTINGS_KEY] = settings
    app.router.add_get("/api/context/{session_id}", context_handler)
    app.router.add_get("/agent/{session_id}", agent_page_handler)
    app.router.add_get("/healthz", healthz_handler)
    app.router.add_get("/readyz", readyz_handler)
    app.router.add_get("/metrics", metrics_handler)
    if campaign_flows is not None:
        from ari_app.outbound.registry import Campaigns
        from ari_app.web.campaigns import add_routes

        token = settings.token
        add_routes(app, Campaigns(store.redis.client, store.keys.prefix, store.protector.cipher), campaign_flows,
                   lambda: token.get_secret_value() if token is not None else None)  # fmt: skip
    # Static assets hold no call data, so they need no token.
    app.router.add_static("/agent-static/", STATIC, show_index=False)
    return app
