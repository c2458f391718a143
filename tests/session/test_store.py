"""SessionStore against the real Redis of the embedded stack."""

from __future__ import annotations

import json

import pytest
import redis.asyncio as aioredis

from ari_app.session.models import TranscriptEntry
from ari_app.session.store import SessionCorrupt, SessionNotFound, SessionStoreUnavailable
from tests.session.conftest import StoreFactory, new_record

pytestmark = pytest.mark.stack


async def test_create_get_round_trip_and_channel_index(make_store: StoreFactory) -> None:
    store = await make_store()
    rec = new_record(
        bridge_id="br-1",
        intent="billing",
        slots={"account_name": "Ann Lee", "amount": 42.5},
        transcript=[TranscriptEntry(speaker="agent", text="Hello, how can I help?", confidence=None)],
        conversation_state={"flow": "billing", "step": "ask_amount", "retries": 0},
    )
    await store.create(rec)

    got = await store.get(rec.session_id)
    assert got is not None
    assert got.model_dump(exclude={"lease_expires_at", "owner_instance"}) == rec.model_dump(
        exclude={"lease_expires_at", "owner_instance"}
    )
    assert got.owner_instance == "inst-a"
    assert got.lease_expires_at is not None
    assert await store.by_channel(rec.channel_id) == rec.session_id
    assert await store.get("no-such-call") is None
    assert await store.by_channel("no-such-channel") is None


async def test_save_turn_keeps_order_and_reads_back_from_another_instance(make_store: StoreFactory) -> None:
    store = await make_store("inst-a")
    rec = new_record()
    await store.create(rec)
    for i in range(1, 6):
        turn = await store.save_turn(
            rec.session_id,
            {"step": f"s{i}", "history": list(range(i))},
            [
                TranscriptEntry(speaker="caller", text=f"caller says {i}", confidence=0.9),
                {"speaker": "agent", "text": f"agent answers {i}"},
            ],
            {"asr_ms": 100 + i, "tts_ms": 50 + i},
        )
        assert turn == i

    other = await make_store("inst-b")
    got = await other.get(rec.session_id)
    assert got is not None
    assert got.turn == 5
    assert got.conversation_state == {"step": "s5", "history": [0, 1, 2, 3, 4]}
    assert [e.text for e in got.transcript] == [
        t for i in range(1, 6) for t in (f"caller says {i}", f"agent answers {i}")
    ]
    assert [m["asr_ms"] for m in got.metrics] == [101, 102, 103, 104, 105]
    events = await store.events(rec.session_id)
    assert [e.type for e in events] == ["created", "turn", "turn", "turn", "turn", "turn"]
    assert [e.data for e in events[1:]] == [1, 2, 3, 4, 5]
    assert [e.type for e in await store.events(rec.session_id, count=2)] == ["turn", "turn"]


async def test_replayed_turn_is_not_applied_twice(make_store: StoreFactory, redis: aioredis.Redis) -> None:
    """The Lua script skips a turn number already stored: replaying buffered writes after an
    ambiguous failure cannot duplicate transcript lines."""
    store = await make_store()
    rec = new_record()
    await store.create(rec)
    await store.save_turn(rec.session_id, {"n": 1}, [{"speaker": "caller", "text": "once"}])
    k = store.keys
    keys = [
        k.call(rec.session_id),
        k.transcript(rec.session_id),
        k.metrics(rec.session_id),
        k.events(rec.session_id),
    ]
    replay = await store._save_turn(
        keys=keys, args=[1, "{}", 100, 0.0, 1, '{"speaker":"caller","text":"once"}']
    )
    assert replay == 0
    assert await redis.llen(k.transcript(rec.session_id)) == 1
    unknown = await store._save_turn(
        keys=[f"{k.prefix}:call:ghost", "a", "b", "c"], args=[1, "{}", 100, 0.0, 0]
    )
    assert unknown == -1  # never creates half a record for an unknown call


async def test_end_sets_retention_ttl_and_releases(make_store: StoreFactory, redis: aioredis.Redis) -> None:
    store = await make_store(retention_seconds=120)
    rec = new_record()
    await store.create(rec)
    await store.save_turn(rec.session_id, {}, [{"speaker": "caller", "text": "bye"}], {"asr_ms": 1})
    await store.end(rec.session_id, "caller hung up")

    k = store.keys
    for key in (*k.all_for_call(rec.session_id), k.channel(rec.channel_id)):
        ttl = await redis.ttl(key)
        assert 0 < ttl <= 120, key
    assert not await redis.sismember(k.active, rec.session_id)
    assert await redis.get(k.lease(rec.session_id)) is None
    got = await store.get(rec.session_id)
    assert got is not None and got.status == "ended" and got.end_reason == "caller hung up"
    assert got.ended_at is not None and got.ended_at >= got.started_at
    assert (await store.events(rec.session_id))[-1].data == {"reason": "caller hung up"}
    with pytest.raises(SessionNotFound, match="ghost"):
        await store.end("ghost", "x")


async def test_sensitive_slots_are_masked_at_rest(make_store: StoreFactory, redis: aioredis.Redis) -> None:
    store = await make_store()
    rec = new_record(
        slots={
            "card_number": "4111 1111 1111 1234",
            "pin": "9876",
            "member_code": "AB-778812",
            "city": "Lyon",
        },
        sensitive_slots=["member_code"],
    )
    stored = await store.create(rec)
    assert stored.slots == {"card_number": "****1234", "pin": "****", "member_code": "****", "city": "Lyon"}
    await store.save_turn(rec.session_id, {"slots": {"card_number": "5500000000000004", "city": "Lyon"}})
    await store.update(rec.session_id, slots={"card_number": "4000 0000 0000 0002", "city": "Paris"})

    everything = b""
    async for key in redis.scan_iter(match=f"{store.keys.prefix}:*"):
        if await redis.type(key) == b"hash":
            everything += b"".join((await redis.hgetall(key)).values())
    for secret in (b"4111", b"9876", b"778812", b"5500000000000004", b"4000 0000"):
        assert secret not in everything
    got = await store.get(rec.session_id)
    assert got is not None
    assert got.slots["card_number"] == "****0002" and got.slots["city"] == "Paris"
    assert got.conversation_state["slots"]["card_number"] == "****0004"


async def test_update_rejects_bad_fields_and_records_transfers(make_store: StoreFactory) -> None:
    store = await make_store()
    rec = new_record()
    await store.create(rec)
    with pytest.raises(ValueError, match="transcript"):
        await store.update(rec.session_id, transcript=[])
    with pytest.raises(ValueError, match="status"):
        await store.update(rec.session_id, status="on-fire")
    with pytest.raises(SessionNotFound):
        await store.update("ghost", intent="x")
    await store.record_transfer(
        rec.session_id, "transferring", {"queue": "support", "reason": "asked for a human"}
    )
    await store.append_event(rec.session_id, "error", {"what": "tts timeout"})
    got = await store.get(rec.session_id)
    assert (
        got is not None
        and got.status == "transferring"
        and got.transfer
        == {
            "queue": "support",
            "reason": "asked for a human",
        }
    )
    types = [e.type for e in await store.events(rec.session_id)]
    assert types == ["created", "transfer", "error"]


async def test_corrupt_record_raises_with_salvaged_fields(
    make_store: StoreFactory, redis: aioredis.Redis
) -> None:
    store = await make_store()
    rec = new_record(intent="refund", summary="wants a refund for order 1234")
    await store.create(rec)
    await store.save_turn(rec.session_id, {}, [{"speaker": "caller", "text": "refund please"}])
    key = store.keys.call(rec.session_id)
    await redis.hset(key, "conversation_state", b"{truncated")
    await redis.hset(key, "status", json.dumps("exploded"))
    await redis.rpush(store.keys.transcript(rec.session_id), b"\xff garbage")

    reader = await make_store("inst-b")
    with pytest.raises(SessionCorrupt) as err:
        await reader.get(rec.session_id)
    e = err.value
    assert any("conversation_state" in p for p in e.problems)
    assert any("status" in p for p in e.problems)
    assert any("transcript line 1" in p for p in e.problems)
    assert e.salvaged["caller_number"] == rec.caller_number
    assert e.salvaged["intent"] == "refund" and e.salvaged["summary"] == rec.summary
    assert [t["text"] for t in e.salvaged["transcript"]] == ["refund please"]

    # Even the required channel id broken: the rest is still handed over.
    await redis.hset(key, "channel_id", b"not json")
    with pytest.raises(SessionCorrupt) as err2:
        await reader.get(rec.session_id)
    assert err2.value.salvaged["caller_number"] == rec.caller_number
    assert "channel_id" not in err2.value.salvaged


async def test_unreachable_redis_at_startup_names_the_url(make_store: StoreFactory) -> None:
    with pytest.raises(SessionStoreUnavailable, match=r"redis://127\.0\.0\.1:1/0"):
        await make_store(url="redis://127.0.0.1:1/0")
