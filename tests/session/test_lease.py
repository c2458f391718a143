"""Leases: two instances never both own a call; a dead instance's calls become takeable orphans."""

from __future__ import annotations

import asyncio

import pytest

from tests.session.conftest import StoreFactory, new_record

pytestmark = pytest.mark.stack

FAST = {"heartbeat_interval": 0.1, "lease_ttl": 0.3}


async def test_two_instances_racing_never_both_win(make_store: StoreFactory) -> None:
    a = await make_store("inst-a")
    b = await make_store("inst-b")
    for i in range(50):
        sid = f"race-{i}"
        won_a, won_b = await asyncio.gather(a.leases.acquire(sid), b.leases.acquire(sid))
        assert won_a != won_b, f"round {i}: a={won_a} b={won_b}"
        winner, loser = (a, b) if won_a else (b, a)
        assert await loser.leases.acquire(sid) is False  # still held
        assert await winner.leases.acquire(sid) is True  # re-acquiring our own lease extends it
        assert await a.leases.owner(sid) == winner.instance_id
        await loser.leases.release(sid)  # releasing someone else's lease does nothing
        assert await a.leases.owner(sid) == winner.instance_id


async def test_dead_instance_calls_become_orphans_and_are_taken_over(make_store: StoreFactory) -> None:
    a = await make_store("inst-a", **FAST)
    b = await make_store("inst-b", **FAST)
    rec = new_record()
    await a.create(rec)
    await a.save_turn(rec.session_id, {"step": "confirm"}, [{"speaker": "caller", "text": "yes"}])
    assert await b.leases.orphaned_sessions() == []

    # inst-a "dies": no more heartbeats. Its lease lapses after lease_ttl.
    await asyncio.sleep(FAST["lease_ttl"] + 0.1)
    assert await b.leases.orphaned_sessions() == [rec.session_id]
    taken = await b.take_over(rec.session_id)
    assert taken is not None
    assert taken.conversation_state == {"step": "confirm"} and taken.owner_instance == "inst-b"
    assert await b.leases.orphaned_sessions() == []
    assert await a.take_over(rec.session_id) is None  # lost the race

    # b carries on with the call where a left it.
    assert await b.save_turn(rec.session_id, {"step": "done"}, [{"speaker": "agent", "text": "done"}]) == 2
    events = [e.type for e in await b.events(rec.session_id)]
    assert events == ["created", "turn", "taken_over", "turn"]

    # inst-a comes back to life: its next heartbeat learns the call is gone.
    lost: list[str] = []
    a.leases.on_lost = lost.append
    assert await a.leases.renew_all() == [rec.session_id]
    assert lost == [rec.session_id] and rec.session_id not in a.leases.owned
    got = await b.get(rec.session_id)
    assert got is not None and got.owner_instance == "inst-b"


async def test_heartbeat_keeps_leases_alive_and_ended_calls_are_not_orphans(make_store: StoreFactory) -> None:
    a = await make_store("inst-a", **FAST)
    b = await make_store("inst-b", **FAST)
    live, done = new_record(), new_record()
    await a.create(live)
    await a.create(done)
    a.leases.start()
    await a.end(done.session_id, "hangup")
    await asyncio.sleep(FAST["lease_ttl"] * 3)
    assert await b.leases.orphaned_sessions() == []
    assert await b.leases.acquire(live.session_id) is False
    await a.leases.stop()
    await asyncio.sleep(FAST["lease_ttl"] + 0.1)
    assert await b.leases.orphaned_sessions() == [live.session_id]
