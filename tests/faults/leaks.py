"""Fault suite helpers: what must be true after any call, however it ended — nothing of it left
in Asterisk, every Redis key of it expiring, and it no longer listed as active."""

from __future__ import annotations

import asyncio
import time

from ari_app.ari import AriClient
from ari_app.session import SessionStore


async def nothing_left_in_asterisk(ari: AriClient, timeout: float = 8.0) -> None:
    """No channel or bridge remains (the test stack holds nothing but the call under test)."""
    left: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [c.id for c in await ari.list_channels()] + [b.id for b in await ari.list_bridges()]
        if not left:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"still in Asterisk {timeout:g} s after the call: {left}")


async def keys_expire(store: SessionStore, session_id: str) -> dict[str, int]:
    """Every key of the call has a TTL and the call is not in calls:active. Returns key -> TTL."""
    r, k = store.redis.client, store.keys
    keys = [key.decode() async for key in r.scan_iter(match=f"{k.prefix}:call:{session_id}*")]
    keys += [key.decode() async for key in r.scan_iter(match=f"{k.prefix}:channel:*")
             if (await r.get(key) or b"").decode() == session_id]  # fmt: skip
    assert keys, f"no keys at all for call {session_id}"
    ttls = {key: int(await r.ttl(key)) for key in keys}
    forever = [key for key, ttl in ttls.items() if ttl < 0]
    assert not forever, f"keys without a TTL: {forever}"
    assert not await r.sismember(k.active, session_id), f"{session_id} still in {k.active}"
    return ttls
