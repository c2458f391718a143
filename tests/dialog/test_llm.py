"""The optional LLM commander against a fake OpenAI-compatible server on loopback, with the real
understanding and the reference flows: it is only asked where the engine would say no-match,
and only what survives the checks is carried out."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from aiohttp import web

from ari_app.config import load_settings
from ari_app.dialog.engine import DialogEngine
from ari_app.dialog.llm import LlmCommander
from ari_app.dialog.loader import load_flows
from ari_app.dialog.settings import LlmSettings
from ari_app.dialog.state import CallContext, CallerInput, Turn
from tests.dialog.harness import ROOT

pytestmark = pytest.mark.models

# The classifier finds no intent in this (checked below without an LLM).
MISSED = "I can't make it on Thursday at the clinic, something came up"


class FakeLlm:
    """POST /v1/chat/completions answering with the tool calls in ``calls`` (or never, if ``hang``)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.hang = False
        self.requests: list[dict[str, Any]] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        if self.hang:
            await asyncio.sleep(3600)
        tool_calls = [
            {"id": f"call_{i}", "type": "function", "function": {"name": n, "arguments": json.dumps(a)}}
            for i, (n, a) in enumerate(self.calls)
        ]
        message = {"role": "assistant", "content": None, "tool_calls": tool_calls or None}
        return web.json_response(
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": 0,
                "model": body.get("model", "fake"),
                "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
            }
        )


@pytest.fixture(scope="module")
def nlu():
    from ari_app.dialog.nlu import build_understanding

    return build_understanding()


@pytest.fixture(scope="module")
def flowset():
    return load_flows([ROOT / "flows"])


@pytest.fixture
async def fake():
    server = FakeLlm()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", server.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    server.url = f"http://127.0.0.1:{port}/v1"  # type: ignore[attr-defined]
    yield server
    await runner.cleanup()


@pytest.fixture
async def commander(fake):
    llm = LlmCommander(LlmSettings(base_url=fake.url, model="fake-model", timeout=0.5))
    yield llm
    await llm.close()


def says(turn: Turn) -> list[str]:
    return [a.text for a in turn.actions if a.kind == "say"]


async def first_turn(engine: DialogEngine, text: str) -> Turn:
    start = engine.start(CallContext(call_id="t", caller_number="5551234567"))
    return await engine.handle(start.state, CallerInput(text=text))


async def test_without_llm_the_paraphrase_is_a_no_match(flowset, nlu):
    turn = await first_turn(DialogEngine(flowset, nlu), MISSED)
    assert turn.decision["pattern"] == "no_match" and "llm" not in turn.decision
    assert says(turn) == ["Sorry, I didn't understand that. How can I help you?"]


async def test_paraphrase_the_classifier_misses_is_routed_by_the_llm(flowset, nlu, fake, commander):
    fake.calls = [("start_flow", {"flow": "reschedule_appointment"})]
    turn = await first_turn(DialogEngine(flowset, nlu, llm=commander), MISSED)
    assert turn.decision["intent"] == "reschedule_appointment" and turn.decision["pattern"] == "llm"
    assert turn.state.frame is not None and turn.state.frame.flow == "reschedule_appointment"
    assert says(turn)[0].startswith("Sure, I can help you reschedule.")
    request = fake.requests[0]
    assert request["model"] == "fake-model"
    assert MISSED in json.dumps(request["messages"])
    tools = {t["function"]["name"] for t in request["tools"]}
    assert {"start_flow", "cancel", "clarify"} <= tools
    assert "reschedule_appointment" in request["messages"][0]["content"]


async def test_unknown_slot_and_unknown_flow_are_ignored(flowset, nlu, fake, commander):
    fake.calls = [
        ("start_flow", {"flow": "order_status"}),
        ("set_slot", {"name": "favourite_colour", "value": "blue"}),
        ("set_slot", {"name": "order_number", "value": "12345"}),
        ("start_flow", {"flow": "launch_rockets"}),
    ]
    turn = await first_turn(DialogEngine(flowset, nlu, llm=commander), "banana helicopter")
    note = turn.decision["llm"]
    assert note["applied"] == "start_flow(order_status)"
    assert any("favourite_colour" in why for why in note["ignored"])
    assert any("launch_rockets" in why for why in note["ignored"])
    frame = turn.state.frame
    assert frame is not None and frame.flow == "order_status"
    assert frame.slots == {"order_number": "12345"}  # the known slot, through the slot's validation
    assert "favourite_colour" not in json.dumps(turn.state.to_dict())


async def test_slot_value_the_slot_rejects_is_ignored(flowset, nlu, fake, commander):
    fake.calls = [
        ("start_flow", {"flow": "order_status"}),
        ("set_slot", {"name": "order_number", "value": "12"}),  # order numbers have five digits
    ]
    turn = await first_turn(DialogEngine(flowset, nlu, llm=commander), "banana helicopter")
    assert turn.state.frame is not None and turn.state.frame.slots == {}
    assert turn.state.frame.awaiting == "slot" and turn.state.frame.slot == "order_number"
    assert any("rejected" in why for why in turn.decision["llm"]["ignored"])


async def test_open_slot_filled_by_the_llm_but_never_a_sensitive_one(flowset, nlu, fake, commander):
    engine = DialogEngine(flowset, nlu, llm=commander)
    started = await first_turn(engine, "I need to reschedule my appointment")
    assert started.state.frame is not None and started.state.frame.slot == "phone"
    fake.calls = [("set_slot", {"name": "phone", "value": "5550123456"})]
    turn = await engine.handle(started.state, CallerInput(text="my mobile, the same as you have on file"))
    frame = turn.state.frame
    assert frame is not None and frame.slots["phone"] == "5550123456" and frame.slot == "dob"
    assert turn.decision["llm"]["applied"] == "set_slot(phone)"
    asked = len(fake.requests)
    fake.calls = [("set_slot", {"name": "dob", "value": "1980-03-03"})]
    again = await engine.handle(turn.state, CallerInput(text="the usual one, you know it"))
    assert len(fake.requests) == asked, "the caller's answer to a sensitive slot must not leave the box"
    assert again.decision["pattern"] == "no_match" and "dob" not in again.state.frame.slots


async def test_hanging_server_times_out_into_the_normal_no_match(flowset, nlu, fake, commander):
    fake.hang = True
    engine = DialogEngine(flowset, nlu, llm=commander)
    started = time.monotonic()
    turn = await first_turn(engine, MISSED)
    elapsed = time.monotonic() - started
    timeout = commander.settings.timeout
    assert "no answer within" in turn.decision["llm"]["error"]
    assert turn.decision["llm"]["ms"] < (timeout + 1.0) * 1000  # how long the engine waited for it
    assert elapsed < timeout + 2.0  # the whole turn, classifier included, on a busy CI box
    assert turn.decision["pattern"] == "no_match"
    assert says(turn) == ["Sorry, I didn't understand that. How can I help you?"]


async def test_llm_is_not_asked_when_the_classifier_knows(flowset, nlu, fake, commander):
    fake.calls = [("start_flow", {"flow": "order_status"})]
    turn = await first_turn(DialogEngine(flowset, nlu, llm=commander), "I need to reschedule my appointment")
    assert turn.decision["intent"] == "reschedule_appointment" and not fake.requests


async def test_cancel_and_clarify(flowset, nlu, fake, commander):
    engine = DialogEngine(flowset, nlu, llm=commander)
    fake.calls = [("clarify", {"options": ["order_status", "billing_duplicate_charge"]})]
    turn = await first_turn(engine, "banana helicopter")
    assert turn.state.awaiting == "clarify"
    assert turn.state.clarify_options == ["order_status", "billing_duplicate_charge"]
    started = await first_turn(engine, "where is my order")
    fake.calls = [("cancel", {})]
    turn = await engine.handle(started.state, CallerInput(text="forget the whole thing mate"))
    assert turn.state.frame is None and turn.state.awaiting == "anything_else"
    assert turn.decision["llm"]["applied"] == "cancel"


def test_settings_default_to_no_llm(monkeypatch):
    assert load_settings().dialog.llm.base_url is None
    monkeypatch.setenv("ARI_APP_DIALOG__LLM__BASE_URL", "http://127.0.0.1:9/v1/")
    monkeypatch.setenv("ARI_APP_DIALOG__LLM__API_KEY", "sk-secret")
    llm = load_settings().dialog.llm
    assert llm.base_url == "http://127.0.0.1:9/v1" and llm.timeout == 1.5
    assert "sk-secret" not in repr(llm)
