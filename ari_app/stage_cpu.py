"""CPU seconds by pipeline stage (every room records its own), so load can be budgeted by numbers.

Why: at 20 calls the machine is busy and the question is where the cycles go — RTP, VAD,
endpointing, ASR (final vs speculative), NLU, dialogue, TTS or the event loop itself. Each stage
wraps its synchronous work in ``measured(stage)``, which adds the thread's CPU time (not wall
time: a thread waiting for a lock or the GIL is not charged) to ``iva_stage_cpu_seconds``. Only
synchronous sections are wrapped: around an ``await`` other coroutines would be charged too.
``snapshot()`` adds the process total and the event loop's unattributed remainder.

Engines that compute in their own native threads (CTranslate2's Whisper workers, onnxruntime's
pools) are charged by thread: ``tag_new_threads(stage, before)`` after loading an engine claims
the threads it started, and their CPU (from /proc) is reported as that stage.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator

from prometheus_client import Counter

STAGE_CPU = Counter("iva_stage_cpu_seconds", "CPU seconds spent by pipeline stage", ["stage"])
# Stages that run on the event loop thread (the rest run in worker threads).
LOOP_STAGES = ("rtp_in", "rtp_out", "vad", "endpointing", "barge_in", "nlu", "dialogue")

_totals: dict[str, float] = {}
_lock = threading.Lock()
_loop_thread: int | None = None
_tagged: dict[int, str] = {}  # native thread id -> the stage whose engine started it


def thread_ids() -> set[int]:
    try:
        return {int(t) for t in os.listdir("/proc/self/task")}
    except OSError:  # not Linux: no per-thread accounting
        return set()


def tag_new_threads(stage: str, before: set[int]) -> None:
    """Charge the threads started since ``before`` (an engine's own pool) to ``stage``."""
    for tid in thread_ids() - before:
        _tagged.setdefault(tid, stage)


def mark_loop_thread() -> None:
    """Called once on the event loop's thread: its CPU minus the loop stages is loop overhead."""
    global _loop_thread
    _loop_thread = threading.get_native_id()


def add(stage: str, seconds: float) -> None:
    STAGE_CPU.labels(stage).inc(seconds)
    with _lock:
        _totals[stage] = _totals.get(stage, 0.0) + seconds


@contextlib.contextmanager
def measured(stage: str) -> Iterator[None]:
    started = time.thread_time()
    try:
        yield
    finally:
        add(stage, time.thread_time() - started)


@contextlib.contextmanager
def loop_section(stage: str) -> Iterator[None]:
    """For async work on the loop thread (the dialogue awaits webhooks): the thread's CPU across
    the section minus what the loop stages measured meanwhile, so nothing is counted twice."""
    started = time.thread_time()
    with _lock:
        before = sum(_totals.get(s, 0.0) for s in LOOP_STAGES)
    try:
        yield
    finally:
        with _lock:
            others = sum(_totals.get(s, 0.0) for s in LOOP_STAGES) - before
        add(stage, max(0.0, time.thread_time() - started - others))


def _thread_cpu(tid: int) -> float | None:
    try:
        with open(f"/proc/self/task/{tid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / 100.0  # utime + stime, in clock ticks (USER_HZ)


def snapshot() -> dict[str, float]:
    """Seconds so far by stage, plus ``process`` (all threads) and ``event_loop_other``."""
    with _lock:
        out = dict(_totals)
    out["process"] = time.process_time()
    loop = _thread_cpu(_loop_thread) if _loop_thread is not None else None
    if loop is not None:
        out["event_loop_other"] = max(0.0, loop - sum(out.get(s, 0.0) for s in LOOP_STAGES))
    for tid, stage in list(_tagged.items()):
        cpu = _thread_cpu(tid)
        if cpu is not None:
            out[stage] = out.get(stage, 0.0) + cpu
    return {k: round(v, 4) for k, v in out.items()}
