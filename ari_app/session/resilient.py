"""A Redis connection that lets calls go on while Redis is away.

Writes are MULTI/EXEC pipelines built by a callback. While Redis is unreachable they wait in a
bounded in-memory queue and are replayed in order by a background reconnect loop; new writes
queue behind them until the queue is empty, so Redis always sees one call's writes in the order
they were made. Reads raise ``RedisUnavailable`` and the store answers from its own memory.
Behind Redis Sentinel (docs/redis_sentinel.md) a failover is one more outage: the primary gone
(no sentinel names one yet) or demoted (it answers READONLY) queues writes like a dead socket,
and the reconnect loop replays them on the promoted replica. A failover the sentinels announce
holds writes from its first step to +switch-master (session/sentinel.py says why).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.asyncio.sentinel import MasterNotFoundError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ari_app.session import metrics
from ari_app.session.connect import open_redis
from ari_app.session.sentinel import FailoverWatch
from ari_app.session.settings import SessionSettings

if TYPE_CHECKING:
    from ari_app.config import RedisSettings

log = logging.getLogger(__name__)

T = TypeVar("T")
# Queues commands on the pipeline; may be async (a Lua Script call on a pipeline must be awaited).
WriteBuilder = Callable[[Pipeline], Awaitable[object] | None]
# What "Redis is not there" looks like from redis-py (BusyLoadingError, while it replays its
# append-only file after a restart, is a ConnectionError subclass). MasterNotFoundError (no
# sentinel names a primary that is up) is one too; it is listed so no refactoring loses it.
OUTAGE_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError, MasterNotFoundError)
# Refusals meaning "this node takes no writes right now", not "this write is wrong": a demoted
# primary (READONLY; redis-py maps it to ReadOnlyError), a primary short of replicas under
# min-replicas-to-write (NOREPLICAS), a replica cut from its primary (MASTERDOWN). The write
# waits and is replayed, as in an outage; were it dropped as a rejected write, a turn would be lost.
_NOT_NOW = ("NOREPLICAS", "MASTERDOWN")
# Longest a failover announcement holds writes when its end is never heard (a lost sentinel
# connection): then the reconnect loop goes back to wherever the sentinels point.
FAILOVER_HOLD_MAX = 15.0


def is_outage(err: BaseException) -> bool:
    if isinstance(err, (*OUTAGE_ERRORS, ReadOnlyError)):
        return True
    return isinstance(err, ResponseError) and str(err).startswith(_NOT_NOW)


class SessionStoreUnavailable(Exception):
    """Redis cannot be reached (at start-up: the app should refuse to start)."""


class RedisUnavailable(SessionStoreUnavailable):
    """Redis is away right now (the store falls back to memory where it can)."""


class FailoverUnderway(RedisUnavailable):
    """The sentinels are replacing the primary: writes wait for the new one."""


class _Pipeline(Pipeline):
    """A MULTI/EXEC pipeline whose errors keep the server's words. redis-py 6.4 rewrites them as
    "Command # n (<the command>) of pipeline caused error: {exception.args}" (literally): the
    server's reason is lost, so NOREPLICAS could not be told from a bad write, and the command
    (a caller's transcript lines) would be copied into our logs."""

    def annotate_exception(self, exception: Exception, number: int, command: object) -> None:
        pass


class ResilientRedis:
    def __init__(self, redis: RedisSettings | str, settings: SessionSettings) -> None:
        """``redis``: the app's RedisSettings (a URL, or sentinels), or a bare URL."""
        self.target = open_redis(redis, settings)
        self.url = self.target.where  # for messages, logs and 503 bodies: never a password
        self.settings = settings
        self.client: aioredis.Redis = self.target.client
        self.healthy = False
        self.outages = 0
        self.dropped_writes = 0
        self._queue: deque[WriteBuilder] = deque()
        self._reconnect_task: asyncio.Task[None] | None = None
        self._went_down_at = 0.0
        self._closed = False
        self._held_since: float | None = None  # a failover announced and not yet over
        self._drop_pool = False  # connections may point at a replaced primary
        self._watch = (
            FailoverWatch(self.target.sentinels, self.target.master, self._hold, self._release)
            if self.target.master
            else None
        )

    @property
    def pending_writes(self) -> int:
        return len(self._queue)

    async def connect(self) -> None:
        try:
            await self.client.ping()
        except Exception as e:
            if not is_outage(e):
                raise
            await self.target.aclose()
            raise SessionStoreUnavailable(
                f"cannot reach Redis at {self.url} ({self.target.explain(e)}); {self.target.hint}"
            ) from None
        self._set_healthy(True)
        if self._watch:
            self._watch.start()

    async def close(self) -> None:
        self._closed = True
        if self._watch:
            await self._watch.stop()
        if self._reconnect_task:
            self._reconnect_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconnect_task
        if self._queue:
            log.error("session store closed with %d writes still waiting for Redis (lost)", len(self._queue))
        await self.target.aclose()

    async def write(self, build: WriteBuilder) -> bool:
        """Apply one transaction now, or queue it if Redis is away. True = applied now."""
        if not self.healthy or self._queue:
            self._enqueue(build)
            return False
        t0 = time.perf_counter()
        try:
            await self._execute(build)
        except Exception as e:
            if not is_outage(e):
                raise
            self._went_away(e)
            self._enqueue(build)
            return False
        metrics.REDIS_WRITE_SECONDS.observe(time.perf_counter() - t0)
        return True

    async def read(self, fn: Callable[[aioredis.Redis], Awaitable[T]]) -> T:
        if not self.healthy:
            raise RedisUnavailable(f"Redis at {self.url} is unreachable (reconnecting in the background)")
        try:
            return await fn(self.client)
        except Exception as e:
            if not is_outage(e):
                raise
            self._went_away(e)
            raise RedisUnavailable(f"Redis at {self.url} is unreachable ({self.target.explain(e)})") from None

    async def _execute(self, build: WriteBuilder) -> None:
        async with _Pipeline(self.client.connection_pool, self.client.response_callbacks, True, None) as pipe:
            queued = build(pipe)
            if inspect.isawaitable(queued):
                await queued
            await pipe.execute()

    def _enqueue(self, build: WriteBuilder) -> None:
        if len(self._queue) >= self.settings.buffer_max_writes:
            self.dropped_writes += 1
            metrics.DROPPED_WRITES.inc()
            if self.dropped_writes == 1 or self.dropped_writes % 1000 == 0:
                log.error(
                    "Redis at %s is still away and %d writes are buffered (session.buffer_max_writes): "
                    "dropping new writes (%d so far)",
                    self.url, len(self._queue), self.dropped_writes,
                )  # fmt: skip
            return
        self._queue.append(build)
        metrics.BUFFERED_WRITES.set(len(self._queue))

    def _went_away(self, err: BaseException) -> None:
        if self.healthy:
            self.outages += 1
            self._went_down_at = time.monotonic()
            log.error(
                "Redis at %s is unreachable (%s): calls go on, writes are buffered in memory",
                self.url, self.target.explain(err),
            )  # fmt: skip
        self._set_healthy(False)
        if not self._closed and (self._reconnect_task is None or self._reconnect_task.done()):
            self._reconnect_task = asyncio.get_running_loop().create_task(self._reconnect_loop())

    def _hold(self, why: str) -> None:
        if self._held_since is None:
            self._held_since = time.monotonic()
            self._went_away(FailoverUnderway(why))

    def _release(self, why: str, switched: bool) -> None:
        if self._held_since is not None:
            log.warning("Redis at %s: %s after %.1f s", self.url, why, time.monotonic() - self._held_since)
        self._held_since = None
        self._drop_pool = True
        if switched and self.healthy:  # a switch whose start we missed: leave the old primary now
            self._went_away(FailoverUnderway(f"the primary was replaced ({why})"))

    def _held(self) -> bool:
        if self._held_since is not None and time.monotonic() - self._held_since > FAILOVER_HOLD_MAX:
            log.error(
                "Redis at %s: no end of the failover heard in %.0f s; reconnecting",
                self.url,
                FAILOVER_HOLD_MAX,
            )
            self._held_since = None
            self._drop_pool = True
        return self._held_since is not None

    def _set_healthy(self, value: bool) -> None:
        self.healthy = value
        metrics.REDIS_HEALTHY.set(1 if value else 0)

    async def _reconnect_loop(self) -> None:
        delay = self.settings.reconnect_min
        while not self._closed:
            await asyncio.sleep(delay)
            if self._held():
                delay = self.settings.reconnect_min  # the end is announced: be quick then
                continue
            try:
                if self._drop_pool:  # before the ping: it must not reach the replaced primary
                    self._drop_pool = False
                    await self.client.connection_pool.disconnect()
                await self.client.ping()
                await self._flush()
            except Exception as e:
                if not is_outage(e):
                    raise
                delay = min(delay * 2, self.settings.reconnect_max)
                continue
            # No await between the queue running empty and this: no write can slip in between.
            self._set_healthy(True)
            log.warning(
                "Redis at %s is back after %.1f s; buffered writes flushed (%d dropped)",
                self.url, time.monotonic() - self._went_down_at, self.dropped_writes,
            )  # fmt: skip
            return

    async def _flush(self) -> None:
        while self._queue:
            try:
                await self._execute(self._queue[0])  # outage -> stays at the head for the next try
            except ResponseError as e:
                if is_outage(e):  # READONLY, NOREPLICAS: the node, not the write
                    raise
                # Redis refused this one write (not an outage): replaying it again would block
                # every write behind it forever.
                log.error("a buffered session write was rejected by Redis and is dropped: %s", e)
                self.dropped_writes += 1
                metrics.DROPPED_WRITES.inc()
            self._queue.popleft()
            metrics.BUFFERED_WRITES.set(len(self._queue))
