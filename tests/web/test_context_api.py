"""Context API, health and metrics through aiohttp's test client, over the real Redis."""

from __future__ import annotations

import time

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer

from ari_app.session.store import SessionStore
from ari_app.web import links
from ari_app.web.app import create_web_app
from ari_app.web.settings import WebSettings
from tests.web.conftest import TOKEN, XSS_SCRIPT, XSS_TEXT, hostile_call

pytestmark = pytest.mark.stack


async def test_token_is_required(client: TestClient, store: SessionStore) -> None:
    rec = await hostile_call(store)
    for path in (f"/api/context/{rec.session_id}", f"/agent/{rec.session_id}"):
        assert (await client.get(path)).status == 401
        assert (await client.get(path, params={"token": "wrong"})).status == 401
        r = await client.get(path, headers={"Authorization": "Bearer nope"})
        assert r.status == 401 and r.headers["WWW-Authenticate"] == "Bearer"
        # The shared token in a URL is refused: it would open every call from browser history.
        assert (await client.get(path, params={"token": TOKEN})).status == 401
        assert (await client.get(path, headers={"Authorization": f"Bearer {TOKEN}"})).status == 200


async def test_a_signed_link_opens_its_own_call_only_and_expires(
    client: TestClient, store: SessionStore
) -> None:
    rec, other = await hostile_call(store), await hostile_call(store)
    link = links.sign(rec.session_id, TOKEN, ttl_s=60)
    assert (await client.get(f"/agent/{rec.session_id}", params={"link": link})).status == 200
    assert (await client.get(f"/api/context/{rec.session_id}", headers={"X-IVA-Link": link})).status == 200
    assert (
        await client.get(f"/api/context/{rec.session_id}", params={"link": link})
    ).status == 401  # header only
    assert (await client.get(f"/agent/{other.session_id}", params={"link": link})).status == 401
    expired = links.sign(rec.session_id, TOKEN, ttl_s=60, now=time.time() - 120)
    assert (await client.get(f"/agent/{rec.session_id}", params={"link": expired})).status == 401
    forged = link.split(".")[0] + "." + "0" * 64
    assert (await client.get(f"/agent/{rec.session_id}", params={"link": forged})).status == 401


async def test_unconfigured_token_disables_instead_of_opening(store: SessionStore) -> None:
    async with TestClient(TestServer(create_web_app(store, WebSettings()))) as c:
        r = await c.get("/api/context/anything", params={"token": ""})
        assert r.status == 503 and "web.token" in (await r.json())["error"]


async def test_context_record_masks_sensitive_slots(client: TestClient, store: SessionStore) -> None:
    rec = await hostile_call(store)
    r = await client.get(f"/api/context/{rec.session_id}", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status == 200
    assert r.headers["Content-Security-Policy"].startswith("default-src 'none'")
    ctx = await r.json()
    assert ctx["caller"] == {"number": rec.caller_number, "name": XSS_TEXT}  # JSON carries raw text
    assert ctx["intent"] == "card_payment" and ctx["reason"] == "caller asked for a human"
    assert ctx["slots"] == {"card_number": "****1234", "order": XSS_TEXT, "cvv": "****"}
    assert [t["text"] for t in ctx["transcript"]] == ["How can I help?", f"pay with {XSS_SCRIPT}"]
    assert ctx["status"] == "transferring" and ctx["incomplete"] is False
    assert "4111" not in await r.text()


async def test_unknown_and_corrupt_calls(
    client: TestClient, store: SessionStore, redis: aioredis.Redis
) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    r = await client.get("/api/context/nobody", headers=auth)
    assert r.status == 404 and "nobody" in (await r.json())["error"]

    rec = await hostile_call(store)
    await redis.hset(store.keys.call(rec.session_id), "slots", b"{broken")
    r = await client.get(f"/api/context/{rec.session_id}", headers=auth)
    assert r.status == 200
    ctx = await r.json()
    assert ctx["incomplete"] is True and any("slots" in p for p in ctx["problems"])
    assert ctx["intent"] == "card_payment" and ctx["slots"] == {}


async def test_healthz_and_metrics(client: TestClient, store: SessionStore) -> None:
    await hostile_call(store)
    r = await client.get("/healthz")
    assert r.status == 200
    assert await r.json() == {
        "status": "ok", "redis": "up", "pending_writes": 0, "instance": "web-inst", "owned_calls": 1,
    }  # fmt: skip
    await client.get("/api/context/x")  # one unauthorized request, counted
    text = await (await client.get("/metrics")).text()
    assert "iva_session_redis_healthy 1.0" in text
    assert 'iva_context_requests_total{result="unauthorized"}' in text
    assert "iva_session_write_seconds_bucket" in text
