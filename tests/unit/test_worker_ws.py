"""ari room: the worker's outbound-websocket protocol against a fake Asterisk client — the
per-call app name, StasisStart routing, RESTRequest/RESTResponse correlation (out of order,
errors, timeouts, a socket that dies with requests pending), and connections refused for wrong
credentials or while draining."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from ari_app.ari.errors import AriConnectionError, AriNotFound
from ari_app.ari.models import Event
from ari_app.ari.worker import CallLink, WorkerServer, basic_auth_ok
from ari_app.config import AriSettings

USER, PASSWORD = "ari-worker", "s3cret-worker"
APP = "ari-app-ws:PJSIP/caller-0000003b"
CHANNEL = {"id": "1764761234.59", "name": "PJSIP/caller-0000003b", "state": "Ring",
           "dialplan": {"app_name": "Stasis", "app_data": "ari-app-ws,inbound,1100"}}  # fmt: skip


def auth(user: str = USER, password: str = PASSWORD) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


class Worker:
    def __init__(self, request_timeout: float = 2.0) -> None:
        self.settings = AriSettings(worker_username=USER, worker_password=PASSWORD,
                                    request_timeout=request_timeout)  # fmt: skip
        self.events: list[tuple[Event, CallLink]] = []
        self.closed: list[CallLink] = []
        self.got_event = asyncio.Event()
        self.on_start: Any = None  # what the worker does on StasisStart (e.g. answer over REST)
        self.server = WorkerServer(self.settings, self._on_event, self._on_closed)
        self.url = ""

    async def _on_event(self, ev: Event, link: CallLink) -> None:
        self.events.append((ev, link))
        self.got_event.set()
        if ev.type == "StasisStart" and self.on_start is not None:
            asyncio.get_running_loop().create_task(self.on_start(ev, link))

    async def _on_closed(self, link: CallLink) -> None:
        self.closed.append(link)


@pytest.fixture
async def worker(unused_tcp_port: int) -> AsyncIterator[Worker]:
    w = Worker()
    app = web.Application()
    w.server.add_routes(app)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()
    w.url = f"http://127.0.0.1:{unused_tcp_port}{w.settings.worker_path}"
    yield w
    await runner.cleanup()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def asterisk_connects(http: aiohttp.ClientSession, w: Worker) -> aiohttp.ClientWebSocketResponse:
    """What Asterisk does for a call: connect, then ApplicationRegistered and StasisStart."""
    ws = await http.ws_connect(w.url, protocols=("ari",), headers=auth())
    assert ws.protocol == "ari"
    await ws.send_str(json.dumps({"type": "ApplicationRegistered", "application": APP}))
    await ws.send_str(json.dumps({"type": "StasisStart", "application": APP, "channel": CHANNEL,
                                  "args": ["inbound", "1100"]}))  # fmt: skip
    return ws


async def next_request(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    msg = await asyncio.wait_for(ws.receive(), 3)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    data = json.loads(msg.data)
    assert data["type"] == "RESTRequest"
    return data


async def reply(
    ws: aiohttp.ClientWebSocketResponse, req: dict[str, Any], status: int, body: Any = None
) -> None:
    msg = {"type": "RESTResponse", "request_id": req["request_id"], "status_code": status,
           "reason_phrase": "", "uri": req["uri"]}  # fmt: skip
    if body is not None:
        msg |= {"content_type": "application/json", "message_body": json.dumps(body)}
    await ws.send_str(json.dumps(msg))


async def wait_for_start(w: Worker) -> CallLink:
    for _ in range(100):
        starts = [link for ev, link in w.events if ev.type == "StasisStart"]
        if starts:
            return starts[0]
        await asyncio.sleep(0.02)
    raise AssertionError(f"no StasisStart reached the worker: {w.events}")


async def test_per_call_app_and_rest_over_the_same_websocket(
    worker: Worker, http: aiohttp.ClientSession
) -> None:
    answered: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    async def on_start(ev: Event, link: CallLink) -> None:
        await link.ari.answer(ev.channel.id)  # type: ignore[union-attr]
        media = await link.ari.external_media("127.0.0.1:20000", channel_id="iva-media-1")
        answered.set_result(media)

    worker.on_start = on_start
    ws = await asterisk_connects(http, worker)
    req = await next_request(ws)
    assert (req["method"], req["uri"]) == ("POST", f"channels/{CHANNEL['id']}/answer")
    await reply(ws, req, 204)
    req = await next_request(ws)
    assert req["uri"] == "channels/externalMedia"
    q = {p["name"]: p["value"] for p in req["query_strings"]}
    assert q["app"] == APP, "channels we create must join the per-call app"
    assert q["channelId"] == "iva-media-1" and q["external_host"] == "127.0.0.1:20000"
    await reply(ws, req, 200, {"id": "iva-media-1", "name": "UnicastRTP/127.0.0.1:20000-0x1"})
    media = await asyncio.wait_for(answered, 3)
    assert media.id == "iva-media-1"
    link = await wait_for_start(worker)
    assert link.app == APP and link.ari.app == APP
    assert [ev.type for ev, _ in worker.events] == ["ApplicationRegistered", "StasisStart"]
    await ws.close()
    for _ in range(50):
        if worker.closed:
            break
        await asyncio.sleep(0.02)
    assert worker.closed == [link] and not worker.server.links


async def test_channel_events_reach_the_calls_subscriber_not_on_event(
    worker: Worker, http: aiohttp.ClientSession
) -> None:
    ws = await asterisk_connects(http, worker)
    link = await wait_for_start(worker)
    queue = link.events.subscribe(CHANNEL["id"])
    await ws.send_str(json.dumps({"type": "ChannelDtmfReceived", "channel": CHANNEL, "digit": "5",
                                  "duration_ms": 100}))  # fmt: skip
    ev = await asyncio.wait_for(queue.get(), 3)
    assert ev.type == "ChannelDtmfReceived" and ev.digit == "5"
    assert [e.type for e, _ in worker.events] == ["ApplicationRegistered", "StasisStart"]
    await ws.close()


async def test_responses_out_of_order_reach_their_own_requests(
    worker: Worker, http: aiohttp.ClientSession
) -> None:
    ws = await asterisk_connects(http, worker)
    link = await wait_for_start(worker)
    first = asyncio.create_task(link.ari.get_channel("a"))
    second = asyncio.create_task(link.ari.get_channel("b"))
    reqs = [await next_request(ws), await next_request(ws)]
    by_uri = {r["uri"]: r for r in reqs}
    assert reqs[0]["request_id"] != reqs[1]["request_id"]
    await reply(ws, by_uri["channels/b"], 200, {"id": "b"})
    await reply(ws, by_uri["channels/a"], 200, {"id": "a"})
    assert (await first).id == "a" and (await second).id == "b"
    # An error status is a typed error, with Asterisk's message.
    missing = asyncio.create_task(link.ari.get_channel("gone"))
    await reply(ws, await next_request(ws), 404, {"message": "Channel not found"})
    with pytest.raises(AriNotFound, match="Channel not found"):
        await missing
    await ws.close()


async def test_a_request_without_an_answer_times_out_naming_the_setting(
    http: aiohttp.ClientSession, unused_tcp_port: int
) -> None:
    w = Worker(request_timeout=0.3)
    app = web.Application()
    w.server.add_routes(app)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()
    w.url = f"http://127.0.0.1:{unused_tcp_port}{w.settings.worker_path}"
    try:
        ws = await asterisk_connects(http, w)
        link = await wait_for_start(w)
        with pytest.raises(AriConnectionError, match=r"ari\.request_timeout"):
            await link.ari.answer(CHANNEL["id"])
        req = await next_request(ws)
        await reply(ws, req, 204)  # a late answer is dropped, nothing breaks
        assert link.transport.pending == 0
        await ws.close()
    finally:
        await runner.cleanup()


async def test_pending_requests_fail_at_once_when_the_socket_dies(
    worker: Worker, http: aiohttp.ClientSession
) -> None:
    ws = await asterisk_connects(http, worker)
    link = await wait_for_start(worker)
    pending = asyncio.create_task(link.ari.answer(CHANNEL["id"]))
    await next_request(ws)
    await ws.close()
    with pytest.raises(AriConnectionError, match="closed"):
        await asyncio.wait_for(pending, 1.0)  # well before ari.request_timeout (2 s here)
    with pytest.raises(AriConnectionError):
        await link.ari.hangup(CHANNEL["id"])


@pytest.mark.parametrize("headers", [{}, auth(password="wrong"), auth(user="someone"),
                                     {"Authorization": "Basic !!notbase64"}, {"Authorization": "Bearer x"}])  # fmt: skip
async def test_a_connection_without_valid_credentials_is_refused(
    worker: Worker, http: aiohttp.ClientSession, headers: dict[str, str]
) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as e:
        await http.ws_connect(worker.url, protocols=("ari",), headers=headers)
    assert e.value.status == 401
    assert not worker.events and worker.server.accepted == 0


async def test_a_draining_worker_refuses_new_calls(worker: Worker, http: aiohttp.ClientSession) -> None:
    ws = await asterisk_connects(http, worker)
    await wait_for_start(worker)
    worker.server.draining = True
    with pytest.raises(aiohttp.WSServerHandshakeError) as e:
        await http.ws_connect(worker.url, protocols=("ari",), headers=auth())
    assert e.value.status == 503
    # The call already up keeps its socket.
    await ws.send_str(json.dumps({"type": "ChannelDtmfReceived", "channel": CHANNEL, "digit": "1"}))
    assert not ws.closed
    await ws.close()


def test_basic_auth_check() -> None:
    assert basic_auth_ok(auth()["Authorization"], USER, PASSWORD)
    assert not basic_auth_ok(None, USER, PASSWORD)
    assert not basic_auth_ok(auth(password=PASSWORD + "x")["Authorization"], USER, PASSWORD)
