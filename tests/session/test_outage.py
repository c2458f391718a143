"""Redis going away mid-call: calls go on from memory, writes are buffered and flushed in order."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
import redis.asyncio as aioredis

from ari_app import stack
from ari_app.config import Settings
from ari_app.session.store import SessionStoreUnavailable
from tests.session.conftest import StoreFactory, new_record
from tests.session.tcp_proxy import TcpProxy

pytestmark = pytest.mark.stack


async def wait_for(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


@pytest.fixture
async def proxy(real_stack: stack.StackState, settings: Settings) -> AsyncIterator[TcpProxy]:
    credentials = urlsplit(settings.redis.url).netloc.rpartition("@")[0]  # the stack's password
    p = TcpProxy(settings.stack.bind, settings.stack.redis_port, credentials)
    await p.start()
    yield p
    if p._server and p._server.is_serving():
        await p.cut()


async def test_outage_buffers_writes_serves_owned_calls_and_flushes_in_order(
    make_store: StoreFactory, proxy: TcpProxy, redis: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    store = await make_store("inst-a", url=proxy.url, reconnect_min=0.05, reconnect_max=0.2)
    rec = new_record()
    await store.create(rec)
    await store.save_turn(rec.session_id, {"step": 1}, [{"speaker": "caller", "text": "before outage"}])
    assert store.healthy

    caplog.set_level(logging.WARNING, logger="ari_app.session")
    await proxy.cut()
    # The call goes on: turns, an update, an event and even a brand-new call, all while Redis is away.
    for i in range(2, 6):
        await store.save_turn(
            rec.session_id, {"step": i}, [{"speaker": "caller", "text": f"during outage {i}"}]
        )
    await store.update(rec.session_id, intent="billing")
    await store.append_event(rec.session_id, "error", {"what": "redis away"})
    late = new_record()
    await store.create(late)
    assert not store.healthy
    assert store.pending_writes == 7

    local = await store.get(rec.session_id)  # answered from memory
    assert local is not None and local.turn == 5 and local.intent == "billing"
    with pytest.raises(SessionStoreUnavailable, match="not owned"):
        await store.get("someone-elses-call")
    assert await store.by_channel(rec.channel_id) == rec.session_id  # owned: answered from memory
    with pytest.raises(SessionStoreUnavailable, match="unreachable"):
        await store.by_channel("someone-elses-channel")
    with pytest.raises(SessionStoreUnavailable, match="unreachable"):
        await store.events(rec.session_id)
    assert await redis.llen(store.keys.transcript(rec.session_id)) == 1  # nothing reached Redis

    await proxy.start()
    await wait_for(lambda: store.healthy)
    assert store.pending_writes == 0
    texts = [t.decode() for t in await redis.lrange(store.keys.transcript(rec.session_id), 0, -1)]
    assert [json.loads(t)["text"] for t in texts] == ["before outage"] + [
        f"during outage {i}" for i in range(2, 6)
    ]
    got = await store.get(rec.session_id)
    assert (
        got is not None
        and got.turn == 5
        and got.conversation_state == {"step": 5}
        and got.intent == "billing"
    )
    assert [e.type for e in await store.events(rec.session_id)] == [
        "created", "turn", "turn", "turn", "turn", "turn", "update", "error",
    ]  # fmt: skip
    assert await store.get(late.session_id) is not None
    # The call created offline gets its lease at the next heartbeat.
    await store.leases.renew_all()
    assert await store.leases.owner(late.session_id) == "inst-a"
    # One clear line when Redis goes away, one when it is back.
    messages = [r.getMessage() for r in caplog.records]
    assert sum("unreachable" in m for m in messages) == 1
    assert sum("is back" in m for m in messages) == 1


async def test_buffer_is_bounded(make_store: StoreFactory, proxy: TcpProxy) -> None:
    store = await make_store("inst-a", url=proxy.url, buffer_max_writes=3, reconnect_min=0.05)
    rec = new_record()
    await store.create(rec)
    await proxy.cut()
    for i in range(6):
        await store.append_event(rec.session_id, "dtmf", {"digit": str(i)})
    assert store.pending_writes == 3
    assert store.redis.dropped_writes == 3
    await proxy.start()
    await wait_for(lambda: store.healthy)
    assert [e.data["digit"] for e in await store.events(rec.session_id) if e.type == "dtmf"] == [
        "0",
        "1",
        "2",
    ]


async def test_real_redis_restart_mid_call(make_store: StoreFactory, settings: Settings) -> None:
    """Restart the real redis-server while turns keep coming: every turn ends up stored, in order
    (appendonly is on, so what was written before the restart survives it)."""
    store = await make_store("inst-a", reconnect_min=0.05, reconnect_max=0.2)
    rec = new_record()
    await store.create(rec)
    await store.save_turn(rec.session_id, {"n": 1}, [{"speaker": "caller", "text": "turn 1"}])

    restart = asyncio.ensure_future(asyncio.to_thread(stack.restart_redis, settings))
    n = 1
    while not restart.done() or n < 5:
        n += 1
        await store.save_turn(rec.session_id, {"n": n}, [{"speaker": "caller", "text": f"turn {n}"}])
        await asyncio.sleep(0.005)
    await restart
    # Whether or not a write fell into the (short) gap, the next one after it must land.
    await store.save_turn(rec.session_id, {"n": n + 1}, [{"speaker": "caller", "text": f"turn {n + 1}"}])
    await wait_for(lambda: store.healthy and store.pending_writes == 0)

    got = await store.get(rec.session_id)
    assert got is not None and got.turn == n + 1
    assert [e.text for e in got.transcript] == [f"turn {i}" for i in range(1, n + 2)]
    assert store.redis.outages >= 1, "the restart went unnoticed: no write hit the dead connection"
