"""Pacing: concurrency, start rate, and the slots kept free for inbound callers."""

from __future__ import annotations

import asyncio
import time

import pytest

from ari_app.outbound.campaign import Pacing
from ari_app.outbound.pacer import Pacer, outbound_room


@pytest.mark.parametrize(
    ("max_concurrent", "capacity", "reserve", "inbound", "outbound", "room"),
    [
        (2, 0, 0.25, 50, 0, 2),  # unlimited capacity: only max_concurrent
        (2, 0, 0.25, 50, 2, 0),
        (5, 10, 0.25, 0, 0, 5),  # 10 - 3 reserved = 7 free for outbound, max_concurrent 5
        (10, 10, 0.25, 0, 0, 7),
        (10, 10, 0.25, 4, 2, 1),  # 10 - 4 - 2 - 3 = 1
        (10, 10, 0.25, 5, 2, 0),
        (10, 10, 0.25, 9, 0, -2),
        (10, 10, 0.3, 0, 0, 7),  # 0.3 x 10 is 3, not 4 (float rounding)
        (10, 10, 0.0, 0, 0, 10),
    ],
)
def test_outbound_room(max_concurrent: int, capacity: int, reserve: float, inbound: int, outbound: int,
                       room: int) -> None:  # fmt: skip
    assert outbound_room(max_concurrent, capacity, reserve, inbound, outbound) == room


def test_own_calls_bound_max_concurrent_all_calls_bound_capacity() -> None:
    # Another campaign has 4 calls up: this one may still start 2 of its own, capacity permitting.
    assert outbound_room(2, 0, 0.25, 0, outbound=4, own=0) == 2
    assert outbound_room(2, 10, 0.25, 2, outbound=4, own=0) == 1


async def test_max_concurrent_blocks_until_release() -> None:
    pacer = Pacer(Pacing(max_concurrent=2, calls_per_second=100))
    await pacer.acquire()
    await pacer.acquire()
    third = asyncio.create_task(pacer.acquire())
    await asyncio.sleep(0.05)
    assert not third.done() and pacer.in_flight == 2
    pacer.release()
    await asyncio.wait_for(third, 1)
    assert pacer.in_flight == 2


async def test_start_rate_is_a_token_bucket_without_bursts() -> None:
    pacer = Pacer(Pacing(max_concurrent=100, calls_per_second=20))
    await asyncio.sleep(0.3)  # a quiet spell must not store up a burst
    started = time.monotonic()
    for _ in range(5):
        await pacer.acquire()
    elapsed = time.monotonic() - started
    assert 0.19 <= elapsed < 2.0, elapsed  # the first at once, then one every 50 ms (never faster)


async def test_inbound_reserve_holds_back_until_callers_leave() -> None:
    inbound = [8]
    pacer = Pacer(Pacing(max_concurrent=5, calls_per_second=100, inbound_reserve=0.2), capacity_max_calls=10,
                  inbound_calls=lambda: inbound[0], poll_s=0.02)  # fmt: skip
    assert await pacer.wait_for_room(timeout=0.05) is False
    waiting = asyncio.create_task(pacer.wait_for_room())
    await asyncio.sleep(0.1)
    assert not waiting.done()  # 10 - 8 = 2 free, both reserved for inbound
    inbound[0] = 7
    await asyncio.wait_for(waiting, 1)
    await pacer.acquire()
    assert pacer.room() == 0  # 7 inbound + 1 outbound + 2 reserved


async def test_slot_context_releases() -> None:
    pacer = Pacer(Pacing(max_concurrent=1, calls_per_second=100))
    with pytest.raises(RuntimeError):
        async with pacer.slot():
            assert pacer.in_flight == 1
            raise RuntimeError
    assert pacer.in_flight == 0
