"""speech: one owner of the speech CPU budget — every call's decodes go through here.

Why: each call used to run its decodes in the default executor, behind one lock. At 20 calls
the lock's queue filled with speculative decodes for pauses that were already over, and a caller
who had finished speaking waited behind them (median turn 2.6-4 s). Here a fixed number of
worker threads (sized to the machine) take the most urgent job first: final decodes (a caller is
waiting) before speculative ones (a guess at the first pause), oldest first within a kind. A
speculative job that has waited longer than ``speculative_max_wait_s`` is dropped unrun: by then
its pause is over or the final is coming, and running it would only delay someone else. A job
whose caller stopped waiting (the pause turned into more speech) is skipped too.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from prometheus_client import Counter, Gauge, Histogram

from ari_app import stage_cpu

T = TypeVar("T")

FINAL, SPECULATIVE = 0, 1
_KIND = {FINAL: "final", SPECULATIVE: "speculative"}

QUEUED = Gauge("iva_asr_queued", "Decodes waiting for a worker", ["kind"])
WAIT_MS = Histogram(
    "iva_asr_wait_ms", "Time a decode waited for a worker (ms)", ["kind"],
    buckets=(1, 5, 10, 25, 50, 100, 200, 400, 800, 1600, 3200),
)  # fmt: skip
DROPPED = Counter("iva_asr_dropped", "Speculative decodes dropped unrun", ["why"])


class DecodeDropped(Exception):
    """A speculative decode was not run (stale); the caller falls back to the final decode."""


@dataclass(order=True)
class _Job:
    priority: int
    seq: int
    fn: Callable[[], Any] = field(compare=False)
    future: asyncio.Future[Any] = field(compare=False)
    loop: asyncio.AbstractEventLoop = field(compare=False)
    queued_at: float = field(compare=False)


class DecodeScheduler:
    """``await run(fn, speculative=...)`` runs blocking ``fn`` on one of ``workers`` threads."""

    def __init__(self, workers: int = 1, speculative_max_wait_s: float = 0.3, name: str = "asr") -> None:
        if workers < 1:
            raise ValueError(f"a decode scheduler needs at least one worker, not {workers}")
        self.workers = workers
        self.speculative_max_wait_s = speculative_max_wait_s
        self._heap: list[_Job] = []
        self._cv = threading.Condition()
        self._seq = itertools.count()
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True) for i in range(workers)
        ]
        for t in self._threads:
            t.start()

    async def run(self, fn: Callable[[], T], *, speculative: bool = False) -> T:
        loop = asyncio.get_running_loop()
        kind = SPECULATIVE if speculative else FINAL
        job = _Job(kind, next(self._seq), fn, loop.create_future(), loop, time.monotonic())
        with self._cv:
            heapq.heappush(self._heap, job)
            QUEUED.labels(_KIND[kind]).inc()
            self._cv.notify()
        return await job.future  # cancelling this marks the job done: a worker then skips it

    def queued(self) -> int:
        with self._cv:
            return len(self._heap)

    def _next(self) -> _Job:
        with self._cv:
            while True:
                while not self._heap:
                    self._cv.wait()
                job = heapq.heappop(self._heap)
                QUEUED.labels(_KIND[job.priority]).dec()
                waited = time.monotonic() - job.queued_at
                if job.future.done():  # cancelled by its caller: nobody wants it any more
                    DROPPED.labels("cancelled").inc()
                    continue
                if job.priority == SPECULATIVE and waited > self.speculative_max_wait_s:
                    DROPPED.labels("stale").inc()
                    _deliver(job, _fail, DecodeDropped("stale speculative decode"))
                    continue
                WAIT_MS.labels(_KIND[job.priority]).observe(waited * 1000)
                return job

    def _work(self) -> None:
        while True:
            job = self._next()
            started = time.thread_time()
            try:
                result = job.fn()
            except BaseException as e:  # handed to the awaiting coroutine
                _deliver(job, _fail, e)
            else:
                _deliver(job, _succeed, result)
            finally:
                stage_cpu.add(f"asr_{_KIND[job.priority]}", time.thread_time() - started)


def _deliver(job: _Job, how: Callable[[asyncio.Future[Any], Any], None], value: Any) -> None:
    try:
        job.loop.call_soon_threadsafe(how, job.future, value)
    except RuntimeError:  # the loop is closed (shutdown): nobody is waiting any more
        pass


def _succeed(fut: asyncio.Future[Any], result: Any) -> None:
    if not fut.done():
        fut.set_result(result)


def _fail(fut: asyncio.Future[Any], exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)
