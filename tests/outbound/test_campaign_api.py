"""The campaign HTTP API against a real Redis: the back-office token opens it, a campaign is
started from a JSON body, steered and read back; bad bodies and files get a clear 4xx."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ari_app.outbound.registry import Campaigns
from ari_app.web.campaigns import add_routes
from tests.outbound.conftest import CIPHER

TOKEN = "back-office-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FLOWS = {"appointment_reminder": ["name", "appt_date"]}
SPEC = {"name": "api-test", "flow": "appointment_reminder", "caller_id": "5551000", "timezone": "UTC"}
CONTACTS = [{"id": "a", "number": "555-0101", "name": "Maria", "data": {"appt_date": "2030-03-04"}},
            {"id": "b", "number": "not a number", "name": "Tom", "data": {"appt_date": "2030-03-04"}},
            {"id": "c", "number": "5550103", "name": "Ann", "data": {}}]  # fmt: skip


@pytest.fixture
async def client(r: aioredis.Redis) -> AsyncIterator[TestClient]:
    app = web.Application()
    prefix = f"api-{id(app)}"
    add_routes(app, Campaigns(r, prefix, CIPHER), lambda: FLOWS, lambda: TOKEN)
    async with TestClient(TestServer(app)) as c:
        yield c


async def test_start_steer_and_read_a_campaign(client: TestClient) -> None:
    resp = await client.post("/api/campaigns", json={"campaign": SPEC, "contacts": CONTACTS}, headers=AUTH)
    body = await resp.json()
    assert resp.status == 201, body
    assert body["added"] == 1 and len(body["skipped"]) == 2, body  # a bad number, a missing input
    assert any("[1], field 'number'" in e for e in body["skipped"]), body["skipped"]
    assert any("'c'" in e and "appt_date" in e for e in body["skipped"]), body["skipped"]
    assert not any("/tmp/" in e for e in body["skipped"]), body["skipped"]
    st = await (await client.get("/api/campaigns/api-test", headers=AUTH)).json()
    assert st["status"] == "running" and st["counts"]["pending"] == 1, st
    paused = await (await client.post("/api/campaigns/api-test/pause", headers=AUTH)).json()
    assert paused["status"] == "paused", paused
    again = await client.post("/api/campaigns/api-test/pause", headers=AUTH)
    assert again.status == 400 and "is paused" in (await again.json())["error"]
    listed = await (await client.get("/api/campaigns", headers=AUTH)).json()
    assert [c["name"] for c in listed] == ["api-test"]
    csv = await (await client.get("/api/campaigns/api-test/results.csv", headers=AUTH)).text()
    assert "\na,****101,pending," in csv, csv  # numbers are masked: the last digits only
    assert "5550101" not in csv, csv


async def test_the_api_needs_the_token_and_names_what_is_wrong(client: TestClient) -> None:
    assert (await client.get("/api/campaigns")).status == 401
    assert (await client.get("/api/campaigns", headers={"Authorization": "Bearer wrong"})).status == 401
    missing = await client.get("/api/campaigns/nope", headers=AUTH)
    assert missing.status == 404 and "no campaign named 'nope'" in (await missing.json())["error"]
    bad = await client.post("/api/campaigns", data=b"not json", headers=AUTH)
    assert bad.status == 400 and "must be JSON" in (await bad.json())["error"]
    wrong = await client.post("/api/campaigns", json={"campaign": {**SPEC, "pacing": {"max_concurrent": 0}},
                                                      "contacts": CONTACTS}, headers=AUTH)  # fmt: skip
    err = (await wrong.json())["error"]
    assert wrong.status == 400 and "pacing.max_concurrent" in err and "/tmp/" not in err, err
    unknown = await client.post("/api/campaigns", json={"campaign": {**SPEC, "flow": "nope"},
                                                        "contacts": CONTACTS}, headers=AUTH)  # fmt: skip
    assert unknown.status == 400 and "'nope' is not a loaded flow" in (await unknown.json())["error"]


async def test_no_token_configured_means_no_api(r: aioredis.Redis) -> None:
    app = web.Application()
    add_routes(app, Campaigns(r, "api-off", CIPHER), lambda: FLOWS, lambda: None)
    async with TestClient(TestServer(app)) as c:
        resp = await c.get("/api/campaigns", headers=AUTH)
        assert resp.status == 503 and "web.token" in (await resp.json())["error"]
