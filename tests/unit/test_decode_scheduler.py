"""The speech scheduler: finals before speculative decodes, stale and abandoned guesses never run."""

from __future__ import annotations

import asyncio
import threading

import pytest

from ari_app.speech.scheduler import DecodeDropped, DecodeScheduler


async def _blocked(sched: DecodeScheduler) -> tuple[threading.Event, asyncio.Task[str]]:
    """Occupy the only worker until the returned gate is set."""
    gate, started = threading.Event(), threading.Event()

    def hold() -> str:
        started.set()
        gate.wait(5)
        return "held"

    task = asyncio.create_task(sched.run(hold))
    await asyncio.to_thread(started.wait, 5)
    return gate, task


async def test_final_decodes_run_before_speculative_ones_queued_earlier() -> None:
    sched = DecodeScheduler(workers=1, speculative_max_wait_s=10)
    gate, held = await _blocked(sched)
    order: list[str] = []
    spec = asyncio.create_task(sched.run(lambda: order.append("spec") or "s", speculative=True))
    await asyncio.sleep(0.01)
    final = asyncio.create_task(sched.run(lambda: order.append("final") or "f"))
    await asyncio.sleep(0.01)
    assert sched.queued() == 2
    gate.set()
    assert await asyncio.gather(held, spec, final) == ["held", "s", "f"]
    assert order == ["final", "spec"]


async def test_a_stale_speculative_decode_is_dropped_unrun() -> None:
    sched = DecodeScheduler(workers=1, speculative_max_wait_s=0.02)
    gate, held = await _blocked(sched)
    ran: list[str] = []
    spec = asyncio.create_task(sched.run(lambda: ran.append("spec"), speculative=True))
    await asyncio.sleep(0.05)  # longer than the speculative wait limit
    gate.set()
    with pytest.raises(DecodeDropped):
        await spec
    await held
    assert ran == []


async def test_an_abandoned_decode_is_skipped_and_errors_reach_the_caller() -> None:
    sched = DecodeScheduler(workers=1)
    gate, held = await _blocked(sched)
    ran: list[str] = []
    abandoned = asyncio.create_task(sched.run(lambda: ran.append("abandoned")))
    await asyncio.sleep(0.01)
    abandoned.cancel()

    def boom() -> None:
        raise ValueError("decoder exploded")

    failing = asyncio.create_task(sched.run(boom))
    gate.set()
    await held
    with pytest.raises(ValueError, match="decoder exploded"):
        await failing
    assert ran == []


async def test_workers_run_decodes_in_parallel() -> None:
    sched = DecodeScheduler(workers=2)
    barrier = threading.Barrier(2, timeout=2)  # only passes if both run at once
    assert await asyncio.gather(sched.run(barrier.wait), sched.run(barrier.wait)) in ([0, 1], [1, 0])


def test_a_scheduler_needs_a_worker() -> None:
    with pytest.raises(ValueError, match="at least one worker"):
        DecodeScheduler(workers=0)
