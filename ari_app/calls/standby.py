"""calls: which instance is the active one for the ARI app, and a standby that takes over.

Why: Asterisk gives an app's events to the last websocket that connected and tells the older
one "ApplicationReplaced". That instance can no longer hear hang-ups or keys, so it hands its
calls over (the new one adopts them through the leases) — but it must not stay useless: it
becomes a standby. The active instance holds ``<prefix>:app:<app>:active`` in Redis with a short
TTL and renews it; when the key has been vacant on two checks in a row (the active instance
died; one check could fall between a release and the new active's first renewal) a standby
takes it, connects its websocket again and adopts the calls left behind.
"""

from __future__ import annotations

import structlog

from ari_app.session.keys import Keys
from ari_app.session.resilient import RedisUnavailable, ResilientRedis

log = structlog.get_logger(__name__)

# Take the key when it is free or ours; ARGV[3] = "1" takes it whoever holds it (a new instance
# that just connected *is* the active one: Asterisk routes the events to it).
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
CLAIM = """
local cur = redis.call('GET', KEYS[1])
if cur == false or cur == ARGV[1] or ARGV[3] == '1' then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""


def active_key(prefix: str, app: str) -> str:
    """The key the active instance of an ARI app keeps (its instance id, with a TTL)."""
    return f"{prefix}:app:{app}:active"


class ActiveInstance:
    def __init__(self, redis: ResilientRedis, keys: Keys, app: str, instance_id: str, ttl_s: float) -> None:
        self.redis = redis
        self.key = active_key(keys.prefix, app)
        self.instance_id = instance_id
        self.ttl_ms = int(ttl_s * 1000)
        self._claim = redis.client.register_script(CLAIM)
        self._release = redis.client.register_script(RELEASE)

    async def claim(self, *, force: bool = False) -> bool:
        """Become (or stay) the active instance. Redis away: True (nobody else can claim either)."""
        try:
            won = await self.redis.read(
                lambda r: self._claim(
                    keys=[self.key], args=[self.instance_id, self.ttl_ms, "1" if force else "0"]
                )
            )
        except RedisUnavailable:
            return True
        return won == 1

    async def take_free(self) -> bool:
        """A standby takes the key only if nobody holds it."""
        try:
            won = await self.redis.read(lambda r: r.set(self.key, self.instance_id, px=self.ttl_ms, nx=True))
        except RedisUnavailable:
            return False
        return bool(won)

    async def release(self) -> None:
        """Replaced: the key is not ours to renew any more (only deleted if it still names us)."""
        try:
            await self.redis.read(lambda r: self._release(keys=[self.key], args=[self.instance_id]))
        except RedisUnavailable:
            pass

    async def holder(self) -> str | None:
        try:
            raw = await self.redis.read(lambda r: r.get(self.key))
        except RedisUnavailable:
            return None
        return raw.decode() if raw else None
