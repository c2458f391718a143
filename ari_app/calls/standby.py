"""calls: which instance is the active one for the ARI app, and a standby that takes over.

Why: Asterisk gives an app's events to the last websocket that connected and tells the older
one "ApplicationReplaced". That instance can no longer hear hang-ups or keys, so it hands its
calls over (the new one adopts them through the leases) — but it must not stay useless: it
becomes a standby. The active instance holds ``<prefix>:app:<app>:active`` in Redis with a short
TTL and renews it; when the key lapses (the active instance died) a standby takes it, connects
its websocket again and adopts the calls left behind.
"""

from __future__ import annotations

import structlog

from ari_app.session.keys import Keys
from ari_app.session.resilient import RedisUnavailable, ResilientRedis

log = structlog.get_logger(__name__)

# Take the key when it is free or ours; ARGV[3] = "1" takes it whoever holds it (a new instance
# that just connected *is* the active one: Asterisk routes the events to it).
CLAIM = """
local cur = redis.call('GET', KEYS[1])
if cur == false or cur == ARGV[1] or ARGV[3] == '1' then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""


class ActiveInstance:
    def __init__(self, redis: ResilientRedis, keys: Keys, app: str, instance_id: str, ttl_s: float) -> None:
        self.redis = redis
        self.key = f"{keys.prefix}:app:{app}:active"
        self.instance_id = instance_id
        self.ttl_ms = int(ttl_s * 1000)
        self._claim = redis.client.register_script(CLAIM)

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

    async def holder(self) -> str | None:
        try:
            raw = await self.redis.read(lambda r: r.get(self.key))
        except RedisUnavailable:
            return None
        return raw.decode() if raw else None
