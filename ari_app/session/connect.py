"""session: the one place a Redis client is built, from a URL or through Redis Sentinel.

Why one factory: the session store, the campaign CLI and everything sharing the store's client
must talk to the same Redis the same way (short timeouts, one immediate retry, bytes). With
``redis.sentinels`` set the client is redis-py's ``Sentinel.master_for`` (with the discovery of
session/sentinel.py): each new connection asks the sentinels where the primary is, so after a
failover the next reconnect reaches the promoted replica. Messages name the sentinels and the
master, never a password: every known secret is masked out of any error text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis
from redis.asyncio.connection import SSLConnection, parse_url
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from ari_app.logs import redact_url
from ari_app.session.sentinel import NewestSentinel
from ari_app.session.settings import SessionSettings

if TYPE_CHECKING:  # ari_app.config imports this package: no import of it at run time
    from ari_app.config import RedisSettings


@dataclass
class RedisTarget:
    """A client and how to speak of it (``where`` is safe to print, log and return in a 503)."""

    client: aioredis.Redis
    where: str
    hint: str  # what an admin can do when it cannot be reached
    sentinels: list[aioredis.Redis] = field(default_factory=list)
    master: str | None = None
    _secrets: tuple[str, ...] = ()

    def explain(self, err: BaseException) -> str:
        """The error as one line without secrets (for logs and SessionStoreUnavailable)."""
        text = str(err) or type(err).__name__
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return redact_url(text)

    async def aclose(self) -> None:
        await self.client.aclose()
        for s in self.sentinels:  # master_for's client closes only its own pool
            await s.aclose()


def parse_sentinel(entry: str) -> tuple[str, int]:
    """``"host:port"`` (``"[::1]:26379"`` for IPv6) -> (host, port); ValueError naming the entry."""
    host, sep, port = entry.strip().rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{entry!r} is not host:port (e.g. 10.0.0.5:26379)")
    return host, int(port)


def open_redis(redis: RedisSettings | str, session: SessionSettings) -> RedisTarget:
    """A ``redis.asyncio.Redis`` for ``redis`` (a RedisSettings, or a bare URL as tests use).
    Nothing is connected yet: the first command connects (``ResilientRedis.connect`` pings)."""
    url = redis if isinstance(redis, str) else redis.url
    # One immediate retry: after a restart or a failover the first command hits a dead pooled
    # socket and the retry reconnects (through the sentinels: to the new primary). No backoff:
    # the call path must not stall on Redis.
    common: dict[str, Any] = {
        "socket_timeout": session.socket_timeout,
        "socket_connect_timeout": session.connect_timeout,
        "retry": Retry(NoBackoff(), 1),
    }
    if isinstance(redis, str) or not redis.sentinels:
        client = aioredis.from_url(url, decode_responses=False, **common)
        return RedisTarget(client, redact_url(url), "start it (ari-app stack up) or fix redis.url")

    data = parse_url(url)  # credentials, db and TLS of the data nodes; host:port is the sentinels'
    for k in ("host", "port", "path"):
        data.pop(k, None)
    if data.pop("connection_class", None) is SSLConnection:
        data["ssl"] = True  # SentinelConnectionPool picks its TLS connection class from this
    own: dict[str, Any] = dict(common)
    sentinel_password = redis.sentinel_password.get_secret_value() if redis.sentinel_password else None
    if sentinel_password:
        own["password"] = sentinel_password
    addresses = [parse_sentinel(e) for e in redis.sentinels]
    sentinel = NewestSentinel(addresses, sentinel_kwargs=own, **common)
    client = sentinel.master_for(redis.sentinel_master, decode_responses=False, **data)
    where = f"sentinels {','.join(e.strip() for e in redis.sentinels)}, master {redis.sentinel_master!r}"
    secrets = tuple(s for s in (data.get("password"), sentinel_password) if s)
    return RedisTarget(
        client,
        where,
        "check that the sentinels run and monitor that master, or fix redis.sentinels / redis.sentinel_master",
        sentinels=list(sentinel.sentinels),
        master=redis.sentinel_master,
        _secrets=secrets,
    )
