"""Background tasks that never silently disappear.

Why: a sweeper, janitor or watcher that dies from one unexpected exception leaves the instance
running but useless (no takeovers, no clean-up) while every health check says ok. A supervised
task is logged when it fails and started again after a pause; only cancellation stops it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog
from prometheus_client import Counter

log = structlog.get_logger(__name__)

RESTARTS = Counter(
    "iva_task_restarts_total", "Background tasks restarted after they failed or ended", ["task"]
)


def supervised(name: str, run: Callable[[], Awaitable[None]], *, pause_s: float = 1.0) -> asyncio.Task[None]:
    async def forever() -> None:
        while True:
            try:
                await run()
                log.warning("task.ended", task=name)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("task.failed", task=name)
            RESTARTS.labels(name).inc()
            await asyncio.sleep(pause_s)

    return asyncio.create_task(forever(), name=name)
