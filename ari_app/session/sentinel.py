"""session: finding the Redis primary through the sentinels, and following their failovers.

Why more than redis-py's ``Sentinel.master_for``: it asks where the primary is only when it opens
a connection, and it believes the first sentinel that answers. Measured on Redis 7.0 (the lab,
docs/redis_sentinel.md): in a graceful failover (``SENTINEL FAILOVER``) the old primary keeps
taking writes for ~10 s after the replica was promoted, until a sentinel converts it; writes over
the pooled connections land there and vanish when it resyncs from the new primary. And right after
a switch only some sentinels know the new primary. So:

- discovery asks every sentinel and trusts the newest configuration epoch;
- ``FailoverWatch`` listens to the sentinels' announcements: from the first step of a failover
  (+try-failover, a few hundred ms before the promotion) writes are held (queued, as in an outage);
  at +switch-master (or an abort) the pooled connections are dropped and the held writes replayed
  on the primary the sentinels now name.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import redis.asyncio as aioredis
from redis.asyncio.sentinel import MasterNotFoundError, Sentinel
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# Steps of a failover under way (published by the sentinel leading it) and its ends.
HOLD = {"+try-failover", "+elected-leader", "+failover-state-select-slave", "+selected-slave",
        "+failover-state-send-slaveof-noone", "+failover-state-wait-promotion", "+promoted-slave"}  # fmt: skip
# Not +failover-end: it comes ~100 ms before the sentinels change the primary's address.
RELEASE = {"+switch-master"}  # and every -failover-abort-*


def _address(state: dict) -> str:
    return f"{state['ip']}:{state['port']}"


class NewestSentinel(Sentinel):
    """``discover_master`` with the newest epoch among all sentinels that answer, and an error
    naming each sentinel's problem without its connection arguments (redis-py's own message
    prints them, the sentinel password included)."""

    async def discover_master(self, service_name: str) -> tuple[str, int]:
        async def ask(s: aioredis.Redis) -> dict | BaseException:
            try:
                return await s.sentinel_masters()
            except (RedisError, OSError) as e:
                return e

        answers = await asyncio.gather(*(ask(s) for s in self.sentinels))
        states, errors = [], []
        for s, got in zip(self.sentinels, answers, strict=True):
            where = (
                f"{s.connection_pool.connection_kwargs['host']}:{s.connection_pool.connection_kwargs['port']}"
            )
            if isinstance(got, BaseException):
                errors.append(f"{where}: {got or type(got).__name__}")
            elif (state := got.get(service_name)) and self.check_master_state(state, service_name):
                states.append(state)
        if states:
            best = max(states, key=lambda st: st["config-epoch"])
            return best["ip"], best["port"]
        if len(errors) == len(self.sentinels):
            raise MasterNotFoundError("no sentinel answered: " + "; ".join(errors))
        others = f" (no answer from {'; '.join(errors)})" if errors else ""
        raise MasterNotFoundError(f"the sentinels know no primary of {service_name!r} that is up{others}")


def _master_of(channel: str, data: str) -> str | None:
    """Which master an event is about: "+switch-master <name> ...", "master <name> <ip> <port>",
    or "<type> <name> <ip> <port> @ <master> <ip> <port>" (a replica or sentinel of that master)."""
    words = data.split()
    if channel == "+switch-master":
        return words[0] if words else None
    if "@" in words[:-1]:
        return words[words.index("@") + 1]
    return words[1] if len(words) > 1 and words[0] == "master" else None


class FailoverWatch:
    """One pub/sub subscription per sentinel; calls ``on_hold(why)`` and ``on_release(why, switched)``
    (``switched``: the primary was replaced, rather than the failover given up)."""

    def __init__(self, sentinels: list[aioredis.Redis], master: str,
                 on_hold: Callable[[str], None], on_release: Callable[[str, bool], None]) -> None:  # fmt: skip
        self.sentinels = sentinels
        self.master = master
        self.on_hold = on_hold
        self.on_release = on_release
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._follow(s)) for s in self.sentinels]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks = []

    def handle(self, channel: str, data: str) -> None:
        if _master_of(channel, data) != self.master:
            return
        if channel in HOLD:
            self.on_hold(f"failover of {self.master!r} under way ({channel})")
        elif channel in RELEASE or channel.startswith("-failover-abort"):
            self.on_release(f"{channel} {data}", channel == "+switch-master")

    async def _follow(self, sentinel: aioredis.Redis) -> None:
        delay = 0.1
        while True:  # a sentinel down or restarting: keep trying, the others still tell us
            try:
                async with sentinel.pubsub() as ps:
                    await ps.psubscribe("*")
                    delay = 0.1
                    while True:
                        msg = await ps.get_message(ignore_subscribe_messages=True, timeout=1.0)
                        if msg and msg["type"] == "pmessage":
                            self.handle(msg["channel"].decode(), msg["data"].decode(errors="replace"))
            except (RedisError, OSError):
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
