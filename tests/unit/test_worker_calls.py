"""calls room: what a worker does with its links, against a fake Asterisk client — a reconnect
(only ApplicationRegistered, as Asterisk 22.10.1 sends after a worker died) is looked up by the
channel name and adopted with the link's REST client; a StasisStart of a channel that already
has a session is adopted, not started afresh; a link that dies under a live call hands the call
over instead of hanging up; a draining worker waits for its calls."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from ari_app.calls import worker_calls
from ari_app.calls.manager import CallManager
from ari_app.calls.worker_calls import LinkScope, WorkerCalls
from ari_app.config import load_settings

APP = "ari-app-ws:PJSIP/caller-00000007"
CALLER = {"id": "1796303596.12", "name": "PJSIP/caller-00000007", "state": "Up",
          "dialplan": {"app_name": "Stasis", "app_data": "ari-app-ws,inbound,1100"}}  # fmt: skip
OTHER = {"id": "1796303596.99", "name": "PJSIP/caller-00000009", "state": "Up"}


class FakeStore:
    def __init__(self, known: set[str]) -> None:
        self.known = known

    async def by_channel(self, channel_id: str) -> str | None:
        return "sess-1" if channel_id in self.known else None


class Env:
    def __init__(self, known: set[str]) -> None:
        s = load_settings(ari={"worker_password": "pw"})
        self.settings = s

        async def conversation(call: Any) -> None:
            await asyncio.sleep(3600)

        self.manager = CallManager(s, conversation)
        self.workers = WorkerCalls(self.manager, FakeStore(known), s.ari)
        self.url = ""


@pytest.fixture
def fake_adopt(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, str]]:
    seen: list[tuple[Any, str]] = []

    async def adopt_call(manager: Any, store: Any, ch: Any) -> bool:
        seen.append((manager, ch.id))
        return True

    import ari_app.calls.takeover as takeover

    monkeypatch.setattr(takeover, "adopt_call", adopt_call)
    monkeypatch.setattr(worker_calls, "ADOPT_AFTER_S", 0.2)
    return seen


async def serve(env: Env, port: int) -> web.AppRunner:
    app = web.Application()
    env.workers.server.add_routes(app)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    env.url = f"http://127.0.0.1:{port}{env.settings.ari.worker_path}"
    return runner


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def auth() -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(b"ari-worker:pw").decode()}


async def until(pred: Any, timeout: float = 3.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if pred():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


async def test_a_reconnect_is_found_by_channel_name_and_adopted_over_the_link(
    fake_adopt: list, http: aiohttp.ClientSession, unused_tcp_port: int
) -> None:
    env = Env(known={CALLER["id"]})
    runner = await serve(env, unused_tcp_port)
    try:
        ws = await http.ws_connect(env.url, protocols=("ari",), headers=auth())
        await ws.send_str(json.dumps({"type": "ApplicationRegistered", "application": APP}))
        req = json.loads((await asyncio.wait_for(ws.receive(), 3)).data)
        assert (req["method"], req["uri"]) == ("GET", "channels")
        await ws.send_str(json.dumps({"type": "RESTResponse", "request_id": req["request_id"], "status_code": 200,
                                      "message_body": json.dumps([OTHER, CALLER])}))  # fmt: skip
        await until(lambda: fake_adopt)
        scope, channel = fake_adopt[0]
        assert channel == CALLER["id"]
        (link,) = env.workers.server.links
        assert isinstance(scope, LinkScope) and scope.ari is link.ari and scope.events is link.events
        assert scope.settings is env.manager.settings  # everything else is the manager's
        assert link.channel_ids == {CALLER["id"]}
        await ws.close()
    finally:
        await env.workers.close()
        await runner.cleanup()


async def test_stasis_start_of_a_known_session_is_adopted_not_started_afresh(
    fake_adopt: list, http: aiohttp.ClientSession, unused_tcp_port: int
) -> None:
    env = Env(known={CALLER["id"]})
    runner = await serve(env, unused_tcp_port)
    try:
        ws = await http.ws_connect(env.url, protocols=("ari",), headers=auth())
        await ws.send_str(json.dumps({"type": "ApplicationRegistered", "application": APP}))
        await ws.send_str(json.dumps({"type": "StasisStart", "application": APP, "channel": CALLER}))
        await until(lambda: fake_adopt)
        assert [c for _, c in fake_adopt] == [CALLER["id"]]
        assert not env.manager.calls  # not started as a new call
        await asyncio.sleep(0.4)  # past ADOPT_AFTER_S: no second adoption by name
        assert len(fake_adopt) == 1
        await ws.close()
    finally:
        await env.workers.close()
        await runner.cleanup()


async def test_a_dead_link_hands_its_live_call_over(unused_tcp_port: int) -> None:
    env = Env(known=set())

    class FakeCall:
        def __init__(self) -> None:
            self.hung_up = asyncio.Event()
            self.handed_off = False
            self.detached = False
            self.info = type("I", (), {"session_id": "sess-1"})()

        def detach(self) -> None:
            self.detached = self.handed_off = True

    call = FakeCall()
    task = asyncio.get_running_loop().create_task(asyncio.sleep(3600))
    env.manager.calls[CALLER["id"]] = call  # type: ignore[assignment]
    env.manager.tasks[CALLER["id"]] = task
    link = type("L", (), {"channel_ids": {CALLER["id"]}, "app": APP})()
    await env.workers.on_closed(link)  # type: ignore[arg-type]
    assert call.detached
    await asyncio.sleep(0)
    assert task.cancelled()
    # A call whose caller had hung up is left to end by itself.
    ended = FakeCall()
    ended.hung_up.set()
    env.manager.calls[OTHER["id"]] = ended  # type: ignore[assignment]
    link.channel_ids = {OTHER["id"]}  # type: ignore[attr-defined]
    await env.workers.on_closed(link)  # type: ignore[arg-type]
    assert not ended.detached


async def test_drain_refuses_new_calls_and_waits_for_the_ones_up() -> None:
    env = Env(known=set())
    env.manager.calls["x"] = object()  # type: ignore[assignment]
    drain = asyncio.create_task(env.workers.drain(timeout=5))
    await asyncio.sleep(0.1)
    assert env.workers.draining and env.workers.readiness() == {"accepting": False}
    assert not drain.done()
    del env.manager.calls["x"]
    await asyncio.wait_for(drain, 2)
    # Bounded: a call that never ends does not keep the worker forever.
    env.manager.calls["y"] = object()  # type: ignore[assignment]
    await asyncio.wait_for(env.workers.drain(timeout=0.3), 2)


async def test_a_reconnected_call_nobody_can_adopt_goes_to_a_person(
    monkeypatch: pytest.MonkeyPatch, http: aiohttp.ClientSession, unused_tcp_port: int
) -> None:
    """Asterisk reconnects a dead worker's call to a worker that cannot adopt it (its Redis
    read fails every time): once the grace is over, the caller is taken out of the dead
    worker's bridge (its media leg hung up), hears Asterisk's apology and goes to the queue."""

    async def adopt_call(manager: Any, store: Any, ch: Any) -> bool:
        raise ConnectionError("Redis at 127.0.0.1:6390 is unreachable")

    import ari_app.calls.takeover as takeover

    monkeypatch.setattr(takeover, "adopt_call", adopt_call)
    monkeypatch.setattr(worker_calls, "ADOPT_AFTER_S", 0.1)
    monkeypatch.setattr(worker_calls, "ADOPT_GRACE_S", 0.3)
    env = Env(known={CALLER["id"]})
    env.manager.settings.session.lease_ttl = 0.1
    bridge = {"id": "iva-br-sess-1", "channels": [CALLER["id"], "iva-media-sess-1"]}
    answers = {("GET", "channels"): [OTHER, CALLER], ("GET", "bridges"): [bridge],
               ("POST", f"channels/{CALLER['id']}/play"): {"id": "pb-1"}}  # fmt: skip
    runner = await serve(env, unused_tcp_port)
    try:
        ws = await http.ws_connect(env.url, protocols=("ari",), headers=auth())
        await ws.send_str(json.dumps({"type": "ApplicationRegistered", "application": APP}))
        asked: list[tuple[str, str, dict[str, str]]] = []
        while not asked or asked[-1][1] != f"channels/{CALLER['id']}/continue":
            req = json.loads((await asyncio.wait_for(ws.receive(), 5)).data)
            params = {q["name"]: q["value"] for q in req.get("query_strings") or []}
            asked.append((req["method"], req["uri"], params))
            key = (req["method"], req["uri"])
            status, body = (
                (404, {"message": "gone"}) if key[1] == "playbacks/pb-1" else (200, answers.get(key))
            )
            await ws.send_str(json.dumps({"type": "RESTResponse", "request_id": req["request_id"],
                                          "status_code": status, "message_body": json.dumps(body)}))  # fmt: skip
        calls = [(m, u) for m, u, _ in asked]
        assert ("DELETE", "channels/iva-media-sess-1") in calls  # the dead worker's media leg
        assert ("DELETE", "bridges/iva-br-sess-1") in calls
        assert calls.index(("DELETE", "bridges/iva-br-sess-1")) < calls.index(
            ("POST", f"channels/{CALLER['id']}/play")
        )
        assert "sound:sorry" in asked[calls.index(("POST", f"channels/{CALLER['id']}/play"))][2]["media"]
        assert asked[-1][2] == {
            "context": "ari-app-queue",
            "extension": env.settings.transfer.queue,
            "priority": "1",
        }
        assert ("DELETE", f"channels/{CALLER['id']}") not in calls  # not hung up: queued
        await ws.close()
    finally:
        await env.workers.close()
        await runner.cleanup()
