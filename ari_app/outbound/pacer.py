"""outbound: pacing — how many outbound calls at once, how fast they start, and room for callers.

Why: outbound calls share this instance's capacity (and the speech CPU) with people calling in.
A campaign must never fill the instance so that a caller gets the busy message: at least
``inbound_reserve x capacity`` slots stay free for inbound calls. Within that, at most
``max_concurrent`` of the campaign's calls are up at once, and they start at most
``calls_per_second`` (a token bucket holding one token: no bursts after a quiet spell, which
trunks and carriers' fraud rules dislike).

Inbound calls come and go without telling the pacer, so a wait for room re-checks every
``poll_s``; a finished outbound call wakes it at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Callable

from ari_app.outbound.campaign import Pacing


def outbound_room(
    max_concurrent: int,
    capacity_max_calls: int,
    inbound_reserve: float,
    inbound: int,
    outbound: int,
    own: int | None = None,
) -> int:
    """How many more outbound calls may start now (<= 0: none).

    ``outbound`` counts every outbound call on the instance, ``own`` this campaign's (default:
    the same). ``capacity_max_calls`` is the instance's resolved capacity (0 = unlimited: only
    ``max_concurrent`` applies); the reserve is rounded up, so 0.25 of 10 keeps 3 slots free.
    """
    room = max_concurrent - (outbound if own is None else own)
    if capacity_max_calls > 0:
        reserve = math.ceil(inbound_reserve * capacity_max_calls - 1e-9)
        room = min(room, capacity_max_calls - inbound - outbound - reserve)
    return room


class Pacer:
    def __init__(
        self,
        pacing: Pacing,
        capacity_max_calls: int = 0,
        inbound_calls: Callable[[], int] = lambda: 0,
        *,
        outbound_calls: Callable[[], int] | None = None,
        clock: Callable[[], float] = time.monotonic,
        poll_s: float = 0.2,
    ) -> None:
        self.pacing = pacing
        self.capacity_max_calls = capacity_max_calls
        self.inbound_calls = inbound_calls
        # Outbound calls on this instance: by default this pacer's own (one campaign at a time).
        self.outbound_calls = outbound_calls or (lambda: self.in_flight)
        self.clock = clock
        self.poll_s = poll_s
        self.in_flight = 0
        self._tokens = 1.0
        self._refilled = clock()
        self._changed = asyncio.Event()

    def room(self) -> int:
        p = self.pacing
        return outbound_room(p.max_concurrent, self.capacity_max_calls, p.inbound_reserve,
                             self.inbound_calls(), self.outbound_calls(), self.in_flight)  # fmt: skip

    def _refill(self) -> None:
        now = self.clock()
        self._tokens = min(1.0, self._tokens + (now - self._refilled) * self.pacing.calls_per_second)
        self._refilled = now

    async def _wait(self, timeout: float) -> None:
        self._changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)

    async def wait_for_room(self, timeout: float | None = None) -> bool:
        """Until one more call would fit (consumes nothing: the dialer claims a contact next).
        False if there is still no room after ``timeout`` seconds."""
        deadline = None if timeout is None else self.clock() + timeout
        while self.room() <= 0:
            left = self.poll_s if deadline is None else min(self.poll_s, deadline - self.clock())
            if left <= 0:
                return False
            await self._wait(left)
        return True

    async def acquire(self) -> None:
        """Until a call may start now; then it counts as in flight until ``release``."""
        while True:
            if self.room() <= 0:
                await self._wait(self.poll_s)
                continue
            self._refill()
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                self.in_flight += 1
                return
            await self._wait((1.0 - self._tokens) / self.pacing.calls_per_second)

    def hold(self) -> None:
        """A call of this campaign the pacer did not start (adopted after a restart) counts
        against ``max_concurrent`` until ``release``."""
        self.in_flight += 1
        self._changed.set()

    def release(self) -> None:
        self.in_flight -= 1
        self._changed.set()

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        await self.acquire()
        try:
            yield
        finally:
            self.release()
