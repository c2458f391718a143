"""A Redis connection that lets calls go on while Redis is away.

Writes are MULTI/EXEC pipelines built by a callback. While Redis is unreachable they wait in a
bounded in-memory queue and are replayed in order by a background reconnect loop; new writes
queue behind them until the queue is empty, so Redis always sees one call's writes in the order
they were made. Reads raise ``RedisUnavailable`` and the store answers from its own memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ari_app.logs import redact_url
from ari_app.session import metrics
from ari_app.session.settings import SessionSettings

log = logging.getLogger(__name__)

T = TypeVar("T")
# Queues commands on the pipeline; may be async (a Lua Script call on a pipeline must be awaited).
WriteBuilder = Callable[[Pipeline], Awaitable[object] | None]
# What "Redis is not there" looks like from redis-py (BusyLoadingError, while it replays its
# append-only file after a restart, is a ConnectionError subclass).
OUTAGE_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)


class SessionStoreUnavailable(Exception):
    """Redis cannot be reached (at start-up: the app should refuse to start)."""


class RedisUnavailable(SessionStoreUnavailable):
    """Redis is away right now (the store falls back to memory where it can)."""


class ResilientRedis:
    def __init__(self, url: str, settings: SessionSettings) -> None:
        self.url = redact_url(url)  # for messages, logs and 503 bodies: never the password
        self.settings = settings
        # One immediate retry: after a Redis restart the first command hits a dead pooled socket
        # and the retry reconnects. No backoff here: the call path must not stall on Redis.
        self.client: aioredis.Redis = aioredis.from_url(
            url,
            socket_timeout=settings.socket_timeout,
            socket_connect_timeout=settings.connect_timeout,
            retry=Retry(NoBackoff(), 1),
            decode_responses=False,
        )
        self.healthy = False
        self.outages = 0
        self.dropped_writes = 0
        self._queue: deque[WriteBuilder] = deque()
        self._reconnect_task: asyncio.Task[None] | None = None
        self._went_down_at = 0.0
        self._closed = False

    @property
    def pending_writes(self) -> int:
        return len(self._queue)

    async def connect(self) -> None:
        try:
            await self.client.ping()
        except OUTAGE_ERRORS as e:
            await self.client.aclose()
            raise SessionStoreUnavailable(
                f"cannot reach Redis at {self.url} ({e}); start it (ari-app stack up) or fix redis.url"
            ) from None
        self._set_healthy(True)

    async def close(self) -> None:
        self._closed = True
        if self._reconnect_task:
            self._reconnect_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconnect_task
        if self._queue:
            log.error("session store closed with %d writes still waiting for Redis (lost)", len(self._queue))
        await self.client.aclose()

    async def write(self, build: WriteBuilder) -> bool:
        """Apply one transaction now, or queue it if Redis is away. True = applied now."""
        if not self.healthy or self._queue:
            self._enqueue(build)
            return False
        t0 = time.perf_counter()
        try:
            await self._execute(build)
        except OUTAGE_ERRORS as e:
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
        except OUTAGE_ERRORS as e:
            self._went_away(e)
            raise RedisUnavailable(f"Redis at {self.url} is unreachable ({e})") from None

    async def _execute(self, build: WriteBuilder) -> None:
        async with self.client.pipeline(transaction=True) as pipe:
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
                self.url, err or type(err).__name__,
            )  # fmt: skip
        self._set_healthy(False)
        if not self._closed and (self._reconnect_task is None or self._reconnect_task.done()):
            self._reconnect_task = asyncio.get_running_loop().create_task(self._reconnect_loop())

    def _set_healthy(self, value: bool) -> None:
        self.healthy = value
        metrics.REDIS_HEALTHY.set(1 if value else 0)

    async def _reconnect_loop(self) -> None:
        delay = self.settings.reconnect_min
        while not self._closed:
            await asyncio.sleep(delay)
            try:
                await self.client.ping()
                await self._flush()
            except OUTAGE_ERRORS:
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
                # Redis refused this one write (not an outage): replaying it again would block
                # every write behind it forever.
                log.error("a buffered session write was rejected by Redis and is dropped: %s", e)
                self.dropped_writes += 1
                metrics.DROPPED_WRITES.inc()
            self._queue.popleft()
            metrics.BUFFERED_WRITES.set(len(self._queue))
