"""Engine pieces without the models: templates, redaction, state round-trip, tool client."""

from __future__ import annotations

import json
import time

import pytest
from aiohttp import web

from ari_app.dialog.flows import Tool
from ari_app.dialog.redact import redact, redact_text
from ari_app.dialog.state import ConversationState, Frame
from ari_app.dialog.templates import TemplateError, render
from ari_app.dialog.tools import ToolClient, verify


def test_template_spoken_formats_and_safety():
    assert (
        render("{d:date} at {t:time}", {"d": "2025-03-11", "t": "14:30"}) == "Tuesday, March 11th at 2:30 PM"
    )
    assert render("{r.times:times}", {"r": {"times": ["09:00", "11:30"]}}) == "9 AM or 11:30 AM"
    with pytest.raises(TemplateError, match="not allowed"):
        render("{x.__class__}", {"x": 1})
    with pytest.raises(TemplateError, match="unknown name"):
        render("{nope}", {})


def test_card_numbers_masked_only_when_luhn_valid():
    assert redact_text("card 4111 1111 1111 1111 thanks") == "card ****1111 thanks"
    assert redact_text("order 1234567890123") == "order 1234567890123"
    assert redact("my pin is 4821", ["4821"]) == "my pin is ****"


def test_state_round_trips_through_json():
    state = ConversationState(
        call_id="c", frames=[Frame(flow="f", slots={"a": "1"}, results={"r": {"x": [1]}})]
    )
    again = ConversationState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert again == state


async def test_tool_client_signs_validates_and_retries(monkeypatch):
    monkeypatch.setenv("T_SECRET", "k")
    seen: list[tuple[bytes, dict[str, str]]] = []

    async def handler(request: web.Request) -> web.Response:
        body = await request.read()
        seen.append((body, dict(request.headers)))
        if len(seen) == 1:
            return web.Response(status=503)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/t", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    tool = Tool(url=f"http://127.0.0.1:{port}/t", hmac_secret_env="T_SECRET", retries=2, backoff=0.01,
                args_schema={"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]})  # fmt: skip
    client = ToolClient()
    try:
        bad = await client.call("t", tool, {"n": "seven"})
        assert not bad.ok and "rejected before sending" in bad.error and not seen
        res = await client.call("t", tool, {"n": 7}, idempotency_key="key-1")  # a POST retries with a key
        assert res.ok and res.attempts == 2
        body, headers = seen[-1]
        verify("k", headers, "POST", "/t", body, now=time.time())
        assert json.loads(body) == {"n": 7}
    finally:
        await client.close()
        await runner.cleanup()
