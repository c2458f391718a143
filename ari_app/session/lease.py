"""Instance leases: exactly one live instance owns a call; a dead instance's calls become orphans.

Each owned call has ``<prefix>:lease:<session>`` = instance id with a TTL (session.lease_ttl),
renewed every session.heartbeat_interval. Every change is a compare-and-set Lua script, so
two instances racing for one call can never both win: Redis runs scripts one at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable

from ari_app.session import metrics
from ari_app.session.keys import Keys
from ari_app.session.resilient import RedisUnavailable, ResilientRedis
from ari_app.session.settings import SessionSettings

log = logging.getLogger(__name__)

# Take the lease if it is free or already ours (then just extend it).
ACQUIRE = """
local cur = redis.call('GET', KEYS[1])
if cur == false or cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
# Extend every lease we hold; re-take one that lapsed while nobody else took it (e.g. after a
# Redis outage longer than the TTL). Returns the 1-based indexes of leases another instance holds.
RENEW = """
local lost = {}
for i, key in ipairs(KEYS) do
  local cur = redis.call('GET', key)
  if cur == false or cur == ARGV[1] then
    redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
  else
    table.insert(lost, i)
  end
end
return lost
"""
# Take a lease only if nobody holds it, not even this instance: two passes of one instance (the
# sweeper and a reconnect) can then never both adopt one call.
TAKE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"""
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

LostCallback = Callable[[str], Awaitable[None] | None]


class LeaseManager:
    def __init__(
        self, redis: ResilientRedis, instance_id: str, settings: SessionSettings, keys: Keys
    ) -> None:
        self.redis = redis
        self.instance_id = instance_id
        self.settings = settings
        self.keys = keys
        self.ttl_ms = int(settings.lease_ttl * 1000)
        # Calls this instance runs. Kept even while Redis is away: renew_all re-takes them later.
        self.owned: set[str] = set()
        # Called with the session id when another instance turned out to hold one of our calls.
        self.on_lost: LostCallback | None = None
        client = redis.client
        self._acquire = client.register_script(ACQUIRE)
        self._renew = client.register_script(RENEW)
        self._release = client.register_script(RELEASE)
        self._take = client.register_script(TAKE)
        self._task: asyncio.Task[None] | None = None

    async def acquire(self, session_id: str) -> bool:
        """Take the call's lease. False if another instance holds it or Redis is unreachable."""
        try:
            won = await self.redis.read(
                lambda r: self._acquire(
                    keys=[self.keys.lease(session_id)], args=[self.instance_id, self.ttl_ms]
                )
            )
        except RedisUnavailable:
            return False
        if won == 1:
            self.owned.add(session_id)
            metrics.LEASES_HELD.set(len(self.owned))
            return True
        return False

    async def take(self, session_id: str) -> bool:
        """Take a free lease (an orphan's). False if anyone holds it, this instance included."""
        try:
            won = await self.redis.read(
                lambda r: self._take(keys=[self.keys.lease(session_id)], args=[self.instance_id, self.ttl_ms])
            )
        except RedisUnavailable:
            return False
        if won == 1:
            self.held(session_id)
        return won == 1

    def held(self, session_id: str) -> None:
        """A lease this instance has just taken (e.g. with a new channel): heartbeat it from now on."""
        self.owned.add(session_id)
        metrics.LEASES_HELD.set(len(self.owned))

    def claim_while_offline(self, session_id: str) -> None:
        """A call started while Redis is away: hold it locally; the next renew_all takes the lease."""
        self.owned.add(session_id)
        metrics.LEASES_HELD.set(len(self.owned))

    async def renew_all(self) -> list[str]:
        """Extend all our leases. Returns the calls lost to another instance (also passed to on_lost)."""
        if not self.owned:
            return []
        order = sorted(self.owned)
        try:
            lost_idx = await self.redis.read(
                lambda r: self._renew(
                    keys=[self.keys.lease(s) for s in order], args=[self.instance_id, self.ttl_ms]
                )
            )
        except RedisUnavailable:
            return []  # nobody else can take a lease while Redis is away either
        lost = [order[int(i) - 1] for i in lost_idx]
        for session_id in lost:
            self.owned.discard(session_id)
            metrics.LEASES_LOST.inc()
            log.error(
                "lease of call %s is held by another instance: this instance stops handling it", session_id
            )
            if self.on_lost:
                result = self.on_lost(session_id)
                if inspect.isawaitable(result):
                    await result
        metrics.LEASES_HELD.set(len(self.owned))
        return lost

    async def release(self, session_id: str) -> None:
        """Give the call up (it ended, or was handed over). Only deletes the lease if it is ours."""
        self.owned.discard(session_id)
        metrics.LEASES_HELD.set(len(self.owned))
        with contextlib.suppress(RedisUnavailable):  # it expires by itself within lease_ttl
            await self.redis.read(
                lambda r: self._release(keys=[self.keys.lease(session_id)], args=[self.instance_id])
            )

    async def owner(self, session_id: str) -> str | None:
        raw = await self.redis.read(lambda r: r.get(self.keys.lease(session_id)))
        return raw.decode() if raw else None

    async def orphaned_sessions(self) -> list[str]:
        """Calls not yet ended whose lease has expired (their instance died), excluding our own."""

        async def scan(r) -> list[str]:  # type: ignore[no-untyped-def]
            members = sorted(m.decode() for m in await r.smembers(self.keys.active))
            if not members:
                return []
            async with r.pipeline(transaction=False) as p:
                for s in members:
                    p.exists(self.keys.lease(s))
                alive = await p.execute()
            return [s for s, a in zip(members, alive, strict=True) if not a and s not in self.owned]

        return await self.redis.read(scan)

    def start(self) -> None:
        """Heartbeat in the background until stop()."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._heartbeat())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_interval)
            try:
                await self.renew_all()
            except Exception:  # a bug here must not stop heartbeats for every call
                log.exception("lease heartbeat failed; retrying at the next beat")
