"""web: the campaign API — what ``ari-app campaign ...`` does, over HTTP, for a back office.

    GET  /api/campaigns                      every campaign's status
    POST /api/campaigns                      start one: {"campaign": {...}, "contacts": [...]}
    GET  /api/campaigns/{name}               its status, contact counts and outcomes
    POST /api/campaigns/{name}/pause|resume|cancel
    GET  /api/campaigns/{name}/results.csv   per-contact results (numbers masked)

All need the back-office token (``Authorization: Bearer <web.token>``); a call's signed link
opens only that call's page, never campaigns.
"""

from __future__ import annotations

import hmac
import io
import json
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import yaml
from aiohttp import web

from ari_app.outbound.errors import CampaignError
from ari_app.outbound.registry import Campaigns
from ari_app.outbound.results import write_results_csv

CAMPAIGNS_KEY = web.AppKey("campaigns", Campaigns)
FLOWS_KEY = web.AppKey("campaign_flows", Callable[[], dict[str, list[str]]])
MAX_BODY = 8 * 1024 * 1024  # a contact list of ~100k rows


def add_routes(app: web.Application, campaigns: Campaigns, flows: Callable[[], dict[str, list[str]]],
               token: Callable[[], str | None]) -> None:  # fmt: skip
    app[CAMPAIGNS_KEY], app[FLOWS_KEY] = campaigns, flows

    @web.middleware
    async def guard(request: web.Request, handler):  # type: ignore[no-untyped-def]
        if not request.path.startswith("/api/campaigns"):
            return await handler(request)
        wanted = token()
        if wanted is None:
            return _error(503, "the campaign API is disabled: set web.token in the configuration")
        given = request.headers.get("Authorization", "")[7:].strip()
        if not hmac.compare_digest(given.encode(), wanted.encode()):
            return _error(401, "missing or wrong credentials: use Authorization: Bearer <web.token>")
        try:
            return await handler(request)
        except CampaignError as e:
            return _error(404 if "no campaign named" in str(e) else 400, str(e))

    app.middlewares.append(guard)
    app.router.add_get("/api/campaigns", list_handler)
    app.router.add_post("/api/campaigns", start_handler)
    app.router.add_get("/api/campaigns/{name}", status_handler)
    app.router.add_post("/api/campaigns/{name}/{action:pause|resume|cancel}", control_handler)
    app.router.add_get("/api/campaigns/{name}/results.csv", results_handler)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def list_handler(request: web.Request) -> web.Response:
    c = request.app[CAMPAIGNS_KEY]
    return web.json_response([asdict(await c.status(n)) for n in await c.names()])


async def status_handler(request: web.Request) -> web.Response:
    return web.json_response(asdict(await request.app[CAMPAIGNS_KEY].status(request.match_info["name"])))


async def control_handler(request: web.Request) -> web.Response:
    m = request.match_info
    return web.json_response(asdict(await request.app[CAMPAIGNS_KEY].control(m["name"], m["action"])))


async def results_handler(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    results = await (await request.app[CAMPAIGNS_KEY].state(name)).results()
    out = io.StringIO()
    write_results_csv(
        results, out, transcript_link=lambda r: f"/agent/{r.session_id}" if r.session_id else ""
    )
    return web.Response(text=out.getvalue(), content_type="text/csv")


async def start_handler(request: web.Request) -> web.Response:
    if (request.content_length or 0) > MAX_BODY:
        return _error(413, f"the body is larger than {MAX_BODY // 1024 // 1024} MB")
    try:
        body = await request.json()
        spec, contacts = body["campaign"], body["contacts"]
        if not isinstance(spec, dict) or not isinstance(contacts, list):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        return _error(400, 'the body must be JSON: {"campaign": {...campaign file...}, "contacts": [...]}')
    with tempfile.TemporaryDirectory(prefix="ari-app-campaign-") as tmp:
        (Path(tmp) / "contacts.json").write_text(json.dumps(contacts))
        path = Path(tmp) / "campaign.yaml"
        path.write_text(yaml.safe_dump({**spec, "contacts": "contacts.json"}))
        try:
            started = await request.app[CAMPAIGNS_KEY].start(path, request.app[FLOWS_KEY]())
        except CampaignError as e:  # name the parts of the body, not our temporary files
            raise CampaignError(str(e).replace(f"{tmp}/", "")) from None
    return web.json_response({"name": started.spec.name, "added": started.added, "updated": started.updated,
                              "skipped": started.errors}, status=201)  # fmt: skip
