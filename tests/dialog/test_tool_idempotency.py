"""Exactly-once tool side effects: the Idempotency-Key (stable across retries and a takeover),
signature v1 (``tools.verify``), the journal hook, and the demo backend enforcing both, against
real aiohttp servers on loopback."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from ari_app.demo_backend.app import DB, REPLAYED_HEADER, Answer, IdempotencyStore, create_app
from ari_app.dialog.engine import DialogEngine
from ari_app.dialog.flows import Tool
from ari_app.dialog.loader import load_flows
from ari_app.dialog.nlu.settings import NluSettings
from ari_app.dialog.state import CallContext, CallerInput, ConversationState
from ari_app.dialog.tools import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureInvalid,
    ToolClient,
    idempotency_key,
    sign,
    signed_headers,
    verify,
)
from tests.dialog.harness import ROOT

SECRET = "idempotency-test-secret"
REFUND = {"type": "object", "properties": {"charge_id": {"type": "integer"}}, "required": ["charge_id"]}

Handler = Any


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app, shutdown_timeout=0.2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def demo_backend(
    seen: list[tuple[str, str]], hold_first: float = 0.0, inner: bool = False
) -> web.Application:
    """The demo backend, recording (path, key) of every request, or with ``inner`` of every one
    that reaches a handler (past the idempotency check); the first /refunds answer is held
    ``hold_first`` s after it was handled (lost on the way back) or, ``inner``, before it is."""
    held: list[str] = []

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        seen.append((request.path, request.headers.get(IDEMPOTENCY_HEADER, "")))
        first = request.path == "/refunds" and not held
        if first:
            held.append(request.path)
        if first and inner:
            await asyncio.sleep(hold_first)
        resp = await handler(request)
        if first and not inner:
            await asyncio.sleep(hold_first)
        return resp

    app = create_app(":memory:", secret=SECRET)
    if inner:
        app.middlewares.append(record)  # after the idempotency middleware: the first is still running
    else:
        app.middlewares.insert(0, record)  # before it: the answer is stored, then lost
    return app


def refunded(app: web.Application) -> int:
    return app[DB].execute("SELECT COUNT(*) FROM charges WHERE refunded=1").fetchone()[0]


async def post(
    url: str,
    path: str,
    body: dict[str, Any],
    key: str | None,
    *,
    secret: str = SECRET,
    at: float | None = None,
) -> tuple[int, dict[str, Any], dict[str, str]]:
    raw = json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers[IDEMPOTENCY_HEADER] = key
    headers |= signed_headers(secret, "POST", path, key, raw, time.time() if at is None else at)
    async with aiohttp.ClientSession() as http, http.post(url + path, data=raw, headers=headers) as r:
        return r.status, await r.json(), dict(r.headers)


# --- signature v1 --------------------------------------------------------------------------------


def test_signature_verifies_and_binds_method_path_key_body_and_time():
    t0 = 1_700_000_000.0
    body = b'{"charge_id":2}'
    headers = {IDEMPOTENCY_HEADER: "k1", **signed_headers(SECRET, "POST", "/refunds?x=1", "k1", body, t0)}
    assert headers[SIGNATURE_HEADER].startswith("v1=") and headers[TIMESTAMP_HEADER] == str(int(t0))
    verify(SECRET, headers, "POST", "/refunds?x=1", body, now=t0 + 10)
    verify(SECRET, {k.lower(): v for k, v in headers.items()}, "post", "/refunds?x=1", body, now=t0)

    def fails(reason: str, **change: Any) -> None:
        call = {"secret": SECRET, "headers": headers, "method": "POST", "path": "/refunds?x=1", "body": body,
                "now": t0} | change  # fmt: skip
        with pytest.raises(SignatureInvalid, match=reason):
            verify(call.pop("secret"), call.pop("headers"), call.pop("method"), call.pop("path"),
                   call.pop("body"), now=call.pop("now"))  # fmt: skip

    fails("does not match", body=b'{"charge_id":3}')
    fails("does not match", path="/refunds?x=2")
    fails("does not match", path="/orders/status?x=1")  # another tool with the same secret
    fails("does not match", method="PUT")
    fails("does not match", headers={**headers, IDEMPOTENCY_HEADER: "k2"})
    fails("does not match", headers={k: v for k, v in headers.items() if k != IDEMPOTENCY_HEADER})
    fails("does not match", secret="another secret")
    fails("outside the 300 s window", now=t0 + 301)  # a replay of an old, captured request
    fails("outside the 300 s window", now=t0 + 3600)
    fails("outside the 300 s window", now=t0 - 301)  # from the future
    fails("missing X-IVA-Signature", headers={TIMESTAMP_HEADER: str(int(t0))})
    fails("missing X-IVA-Timestamp", headers={SIGNATURE_HEADER: headers[SIGNATURE_HEADER]})
    fails("not unix seconds", headers={**headers, TIMESTAMP_HEADER: "yesterday"})
    fails("no v1= signature", headers={**headers, SIGNATURE_HEADER: "sha256=abc"})
    # A moved timestamp breaks the signature even inside the window.
    fails("does not match", headers={**headers, TIMESTAMP_HEADER: str(int(t0) + 5)})
    # Rotation: any one of several v1 values may match.
    rotated = {**headers, SIGNATURE_HEADER: "v1=00ff, " + headers[SIGNATURE_HEADER]}
    verify(SECRET, rotated, "POST", "/refunds?x=1", body, now=t0)
    assert sign(SECRET, "1", "POST", "/a", "", b"") != sign(SECRET, "1", "POST", "/b", "", b"")


def test_key_depends_on_every_part_and_nothing_else():
    base = ("call-1", "billing", 6, "refund_charge", 2, {"charge_id": 2, "note": "x"})
    key = idempotency_key(*base)
    assert key == idempotency_key("call-1", "billing", 6, "refund_charge", 2, {"note": "x", "charge_id": 2})
    assert len(key) == 64 and int(key, 16) >= 0
    for i, other in enumerate(["call-2", "orders", 7, "book", 5, {"charge_id": 3, "note": "x"}]):
        changed = list(base)
        changed[i] = other
        assert idempotency_key(*changed) != key, f"part {i} is not in the key"


# --- the client: keys, retries, journal -------------------------------------------------------------


def refund_tool(url: str, **kw: Any) -> Tool:
    return Tool(url=f"{url}/refunds", args_schema=REFUND, hmac_secret_env="IDEM_SECRET", holding_phrase=None,
                **{"timeout": 0.3, "retries": 1, "backoff": 0.01} | kw)  # fmt: skip


async def test_a_retry_after_a_lost_answer_sends_the_same_key_and_is_applied_once(monkeypatch):
    monkeypatch.setenv("IDEM_SECRET", SECRET)
    seen: list[tuple[str, str]] = []
    app = demo_backend(seen, hold_first=1.0)
    async with serve(app) as url:
        client = ToolClient()
        changes = app[DB].total_changes
        try:
            res = await client.call("refund", refund_tool(url), {"charge_id": 2}, idempotency_key="key-A")
        finally:
            await client.close()
        assert app[DB].total_changes - changes == 1 and refunded(app) == 1
    assert res.ok and res.attempts == 2 and res.data["refund_id"] == "R00002", res
    assert seen == [("/refunds", "key-A"), ("/refunds", "key-A")]


async def test_a_retry_while_the_first_attempt_still_runs_waits_for_it(monkeypatch):
    monkeypatch.setenv("IDEM_SECRET", SECRET)
    seen: list[tuple[str, str]] = []
    app = demo_backend(seen, hold_first=0.6, inner=True)
    async with serve(app) as url:
        client = ToolClient()
        try:
            tool = refund_tool(url, timeout=0.4, retries=2)
            res = await client.call("refund", tool, {"charge_id": 2}, idempotency_key="key-B")
        finally:
            await client.close()
        assert refunded(app) == 1
    assert res.ok and res.attempts >= 2 and res.data["refund_id"] == "R00002", res
    assert seen == [("/refunds", "key-B")]  # inside the idempotency check: the handler ran once


async def test_post_without_a_key_is_not_retried_with_one_it_is(monkeypatch):
    monkeypatch.setenv("IDEM_SECRET", SECRET)
    seen: list[str] = []

    async def flaky(request: web.Request) -> web.Response:
        seen.append(request.method)
        if len(seen) % 2 == 1:
            return web.Response(status=503)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_route("*", "/refunds", flaky)
    async with serve(app) as url:
        client = ToolClient()
        try:
            no_key = await client.call("refund", refund_tool(url, retries=3), {"charge_id": 2})
            assert not no_key.ok and no_key.attempts == 1 and no_key.status == 503 and seen == ["POST"]
            seen.clear()
            keyed = await client.call("refund", refund_tool(url, retries=3), {"charge_id": 2},
                                      idempotency_key="k")  # fmt: skip
            assert keyed.ok and keyed.attempts == 2 and seen == ["POST", "POST"]
            seen.clear()
            patch = await client.call("refund", refund_tool(url, method="PATCH"), {"charge_id": 2})
            assert not patch.ok and patch.attempts == 1
            seen.clear()
            get = await client.call("refund", refund_tool(url, method="GET"), {"charge_id": 2})
            assert get.ok and get.attempts == 2 and seen == ["GET", "GET"]  # as before: GET is retried
        finally:
            await client.close()


async def test_journal_brackets_the_request_and_never_breaks_it(monkeypatch):
    monkeypatch.setenv("IDEM_SECRET", SECRET)
    seen: list[tuple[str, str]] = []
    events: list[tuple[str, dict[str, Any], int]] = []

    async def journal(event: str, data: dict[str, Any]) -> None:
        events.append((event, data, len(seen)))

    async def broken(event: str, data: dict[str, Any]) -> None:
        raise RuntimeError("redis is down")

    async with serve(demo_backend(seen)) as url:
        client = ToolClient()
        try:
            res = await client.call("refund", refund_tool(url), {"charge_id": 2}, idempotency_key="key-J",
                                    journal=journal)  # fmt: skip
            again = await client.call("refund", refund_tool(url), {"charge_id": 2}, idempotency_key="key-J",
                                      journal=broken)  # fmt: skip
            rejected = await client.call("refund", refund_tool(url), {"charge_id": "two"}, journal=journal)
        finally:
            await client.close()
    assert res.ok and again.ok and again.data == res.data and not rejected.ok
    assert events == [
        ("tool_started", {"tool": "refund", "key": "key-J"}, 0),  # written before anything was sent
        ("tool_finished", {"tool": "refund", "key": "key-J", "ok": True, "status": 200, "attempts": 1}, 1),
    ]


# --- a takeover: the same state and answer in a fresh engine ---------------------------------------


@pytest.fixture(scope="module")
def nlu():
    from ari_app.dialog.nlu import build_understanding

    return build_understanding(NluSettings(classifier="tfidf"))


async def test_a_takeover_resends_the_same_key_and_the_refund_happens_once(monkeypatch, nlu):
    monkeypatch.setenv("IVA_DEMO_SECRET", SECRET)
    seen: list[tuple[str, str]] = []
    handled = asyncio.Event()

    @web.middleware
    async def crash_after_refund(request: web.Request, handler: Handler) -> web.StreamResponse:
        resp = await handler(request)
        if request.path == "/refunds" and not handled.is_set():
            handled.set()  # the refund is done; the instance that asked dies before the answer
            await asyncio.sleep(3600)
        return resp

    app = demo_backend(seen)
    app.middlewares.insert(0, crash_after_refund)
    async with serve(app) as url:
        monkeypatch.setenv("DEMO_BACKEND_URL", url)
        first, second = DialogEngine(load_flows(ROOT / "flows"), nlu, ToolClient()), None
        journal_a: list[tuple[str, dict[str, Any]]] = []
        journal_b: list[tuple[str, dict[str, Any]]] = []
        try:
            turn = first.start(CallContext(call_id="sess-42", caller_number="5551234567"))
            for line in ["I was charged twice last month and I need a refund", "#5551234567",
                         "april twelfth nineteen eighty five"]:  # fmt: skip
                text, digits = (None, line[1:]) if line.startswith("#") else (line, None)
                turn = await first.handle(turn.state, CallerInput(text=text, digits=digits))
            assert "refund one" in " ".join(turn.says), turn.says
            saved = json.dumps(turn.state.to_dict())  # what Redis holds before the last answer

            async def note_a(event: str, data: dict[str, Any]) -> None:
                journal_a.append((event, data))

            crashed = asyncio.ensure_future(
                first.handle(turn.state, CallerInput(text="yes please"), on_tool_event=note_a)
            )
            await asyncio.wait_for(handled.wait(), 5)
            crashed.cancel()  # the instance dies mid-webhook
            with pytest.raises(asyncio.CancelledError):
                await crashed

            second = DialogEngine(load_flows(ROOT / "flows"), nlu, ToolClient())

            async def note_b(event: str, data: dict[str, Any]) -> None:
                journal_b.append((event, data))

            resumed = ConversationState.from_dict(json.loads(saved))
            after = await second.handle(resumed, CallerInput(text="yes please"), on_tool_event=note_b)
            assert refunded(app) == 1
        finally:
            await first.tool_client.close()  # type: ignore[union-attr]
            if second is not None:
                await second.tool_client.close()  # type: ignore[union-attr]
    said = " ".join(after.says)
    assert "refunded $49.99" in said and "R00002" in said, said
    refund_keys = [k for path, k in seen if path == "/refunds"]
    assert len(refund_keys) == 2 and refund_keys[0] == refund_keys[1] and refund_keys[0]
    assert journal_a[0] == ("tool_started", {"tool": "refund_charge", "key": refund_keys[0]})
    assert journal_b == [
        ("tool_started", {"tool": "refund_charge", "key": refund_keys[0]}),
        ("tool_finished", {"tool": "refund_charge", "key": refund_keys[0], "ok": True, "status": 200,
                           "attempts": 1}),
    ]  # fmt: skip
    # Every other tool of the call carried a key too, each its own.
    keys = [k for _, k in seen]
    assert all(keys) and len(set(keys)) == len(keys) - 1


# --- the demo backend ----------------------------------------------------------------------------


async def test_demo_backend_refuses_bad_signatures_with_a_reason():
    app = create_app(":memory:", secret=SECRET)
    async with serve(app) as url:
        async with aiohttp.ClientSession() as http:
            async with http.post(url + "/refunds", json={"charge_id": 2}) as r:
                assert r.status == 401 and "missing X-IVA-Signature" in (await r.json())["error"]
        status, body, _ = await post(url, "/refunds", {"charge_id": 2}, "k", secret="wrong")
        assert status == 401 and body["error"] == "signature: signature does not match"
        status, body, _ = await post(url, "/refunds", {"charge_id": 2}, "k", at=time.time() - 600)
        assert status == 401 and "outside the 300 s window" in body["error"]
        assert refunded(app) == 0
        status, body, _ = await post(url, "/refunds", {"charge_id": 2}, "k")
        assert status == 200 and body["ok"] is True


async def test_demo_backend_applies_a_repeated_key_once_and_refuses_a_reused_one():
    app = create_app(":memory:", secret=SECRET)
    async with serve(app) as url:
        db = app[DB]
        changes = db.total_changes
        book = {"appointment_id": 1, "date": "2026-12-09", "time": "11:00"}
        first = await post(url, "/appointments/book", book, "book-1")
        again = await post(url, "/appointments/book", book, "book-1")
        assert first[0] == again[0] == 200 and first[1] == again[1] and first[1]["ok"] is True
        assert REPLAYED_HEADER not in first[2] and again[2][REPLAYED_HEADER] == "true"
        assert db.total_changes - changes == 1
        other = await post(url, "/appointments/book", {**book, "time": "15:00"}, "book-1")
        assert other[0] == 422 and "reused" in other[1]["error"]
        elsewhere = await post(url, "/refunds", {"charge_id": 2}, "book-1")
        assert elsewhere[0] == 422
        assert db.total_changes - changes == 1
        assert db.execute("SELECT time FROM appointments WHERE id=1").fetchone()[0] == "11:00"

        refund = await post(url, "/refunds", {"charge_id": 2}, "refund-1")
        replay = await post(url, "/refunds", {"charge_id": 2}, "refund-1")
        assert refund[1] == replay[1] and refund[1]["ok"] is True and refunded(app) == 1
        # Without a key nothing is remembered: the same refund again is refused by the data.
        assert (await post(url, "/refunds", {"charge_id": 2}, None))[1] == {"ok": False}
        # A request the backend refused (400) is remembered as refused.
        bad = await post(url, "/refunds", {}, "refund-2")
        assert bad[0] == 400 and (await post(url, "/refunds", {}, "refund-2"))[2][REPLAYED_HEADER] == "true"


def test_demo_backend_keeps_a_bounded_number_of_keys_for_a_while():
    now = [0.0]
    store = IdempotencyStore(max_keys=2, ttl_s=60, clock=lambda: now[0])
    answers = {}
    for key in ("a", "b", "c"):
        answers[key] = Answer(f"fingerprint-{key}", 200, b"{}", "application/json", now[0])
        store.put(key, answers[key])
    assert store.get("a") is None and store.get("b") is answers["b"] and len(store.answers) == 2
    now[0] = 61
    assert store.get("c") is None and store.get("b") is None and not store.answers
