"""Test helper: every stored value of some Redis keys, whatever their type (leak scans)."""

from __future__ import annotations

import redis.asyncio as aioredis


async def values_of(r: aioredis.Redis, keys: list[bytes]) -> bytes:
    """Hashes, lists, streams, strings, sets and sorted sets, concatenated."""
    blob = b""
    for key in keys:
        kind = await r.type(key)
        if kind == b"hash":
            blob += b"".join((await r.hgetall(key)).values())
        elif kind == b"list":
            blob += b"".join(await r.lrange(key, 0, -1))
        elif kind == b"stream":
            blob += b"".join(v for _, fields in await r.xrange(key) for v in fields.values())
        elif kind == b"string":
            blob += await r.get(key) or b""
        elif kind == b"set":
            blob += b"".join(await r.smembers(key))
        elif kind == b"zset":
            blob += b"".join(await r.zrange(key, 0, -1))
    return blob
