"""Fault suite, leftovers of a crash: the janitor on the real Asterisk and Redis ends a record
nobody drives whose caller is gone (its keys then expire) and releases `iva-*` objects nobody
owns — only after seeing them orphaned twice, and never those of a call still leased."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from types import SimpleNamespace

import pytest

from ari_app.ari import AriClient
from ari_app.calls.janitor import Janitor
from ari_app.config import Settings
from ari_app.session import CallRecord, SessionSettings, SessionStore
from tests.faults.leaks import keys_expire

pytestmark = pytest.mark.stack


@pytest.fixture
async def store(real_stack, settings: Settings, redis) -> AsyncIterator[SessionStore]:
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    s = SessionStore(
        settings.redis.url,
        "dead-instance",
        SessionSettings(key_prefix=prefix, lease_ttl=4.0, heartbeat_interval=1.0),
    )
    await s.connect()
    yield s
    await s.close()
    async for key in redis.scan_iter(match=f"{prefix}:*"):
        await redis.delete(key)


async def test_janitor_ends_abandoned_records_and_releases_orphaned_objects(
    asterisk, settings, store
) -> None:
    async with AriClient(settings.ari) as ari:
        gone, live = uuid.uuid4().hex, uuid.uuid4().hex
        # A call of a dead instance: its record, no lease any more, its caller long gone.
        await store.create(CallRecord(session_id=gone, channel_id="caller-that-hung-up"))
        await store.leases.release(gone)
        store._owned.clear()  # the dead instance's memory is gone with it
        # A live call of another instance: leased, its bridge must stay.
        other = SessionStore(settings.redis.url, "live-instance",
                             SessionSettings(key_prefix=store.keys.prefix, lease_ttl=60.0))  # fmt: skip
        await other.connect()
        await other.create(CallRecord(session_id=live, channel_id="caller-still-talking"))
        await ari.create_bridge(f"iva-br-{gone}", type="mixing")
        await ari.create_bridge(f"iva-br-{live}", type="mixing")
        await ari.create_bridge("someone-elses-bridge", type="mixing")
        try:
            janitor = Janitor(SimpleNamespace(ari=ari, calls={}), store)
            first = await janitor.sweep()
            assert first["ended"] == 1 and first["released"] == 0, first  # seen once: not yet
            second = await janitor.sweep()
            assert second["released"] == 1, second
            left = {b.id for b in await ari.list_bridges()}
            assert f"iva-br-{gone}" not in left
            assert {f"iva-br-{live}", "someone-elses-bridge"} <= left, left
            rec = await store.get(gone)
            assert rec is not None and rec.status == "ended" and rec.end_reason == "abandoned"
            await keys_expire(store, gone)
        finally:
            await other.close()


async def test_worker_janitor_ends_long_orphaned_sessions_and_sweeps_over_a_call_link(
    asterisk, settings, store
) -> None:
    """Worker mode: no REST route of its own. A session is ended only after it has stayed
    orphaned for abandon_after_s (a caller on another Asterisk cannot be looked up), never a
    leased one; Asterisk's objects are swept only when a call's REST client is at hand."""
    async with AriClient(settings.ari) as ari:
        gone, live = uuid.uuid4().hex, uuid.uuid4().hex
        await store.create(CallRecord(session_id=gone, channel_id="caller-on-some-box"))
        await store.leases.release(gone)
        store._owned.clear()
        other = SessionStore(settings.redis.url, "live-worker",
                             SessionSettings(key_prefix=store.keys.prefix, lease_ttl=60.0))  # fmt: skip
        await other.connect()
        await other.create(CallRecord(session_id=live, channel_id="caller-still-talking"))
        await ari.create_bridge(f"iva-br-{gone}", type="mixing")
        link: list[AriClient] = []  # the worker's calls: none at first
        try:
            janitor = Janitor(SimpleNamespace(ari=None, calls={}), store,
                              rest=lambda: link[0] if link else None, abandon_after_s=1.0)  # fmt: skip
            first = await janitor.sweep()
            assert first == {"ended": 0, "forgotten": 0, "released": 0}, first  # orphaned since now
            rec = await store.get(gone)
            assert rec is not None and rec.status != "ended"
            await asyncio.sleep(1.1)
            link.append(ari)  # a call came in: its REST reaches this Asterisk
            second = await janitor.sweep()
            assert second["ended"] == 1 and second["released"] == 0, second  # objects: seen once
            third = await janitor.sweep()
            assert third["released"] == 1, third
            assert f"iva-br-{gone}" not in {b.id for b in await ari.list_bridges()}
            rec = await store.get(gone)
            assert rec is not None and rec.status == "ended" and rec.end_reason == "abandoned"
            kept = await store.get(live)
            assert kept is not None and kept.status != "ended"
        finally:
            await other.close()
