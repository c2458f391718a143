"""calls: what a caller hears when this instance is full (capacity.max_calls calls up).

Why: the speech CPU is shared, so one call too many makes every call slow (at 20 calls on two
cores the median wait was 2.6-4 s and some turns got no answer). A caller past capacity is
better served by a clear busy message, a human queue or the admin's own DTMF menu than by an
agent that answers in four seconds, and the callers already talking keep their latency.
"""

from __future__ import annotations

import os

import structlog
from prometheus_client import Counter

from ari_app.ari import AriClient
from ari_app.ari.errors import AriConnectionError, AriError
from ari_app.ari.models import Channel
from ari_app.config import CapacitySettings, Settings

log = structlog.get_logger(__name__)

# Calls this machine serves within the latency targets, per core (benchmarks/results/capacity.md).
CALLS_PER_CORE = 5
BUSY_MEDIA = "sound:all-circuits-busy-now,sound:goodbye"
BUSY_PLAYBACK_MAX_S = 12.0
OVERFLOWED = Counter("iva_calls_overflowed", "Calls turned away because the instance was full", ["action"])


def max_calls(capacity: CapacitySettings) -> int:
    return capacity.max_calls or CALLS_PER_CORE * (os.cpu_count() or 1)


async def overflow(ari: AriClient, channel: Channel, settings: Settings) -> None:
    """Send a caller we cannot take to the configured overflow; never raises (it is logged)."""
    cap = settings.capacity
    OVERFLOWED.labels(cap.overflow).inc()
    log.warning("call.overflow", channel=channel.id, action=cap.overflow, max_calls=max_calls(cap))
    try:
        if cap.overflow == "queue":
            await ari.continue_in_dialplan(channel.id, "ari-app-queue", settings.transfer.queue, 1)
        elif cap.overflow == "dialplan":
            await ari.continue_in_dialplan(channel.id, cap.overflow_context, cap.overflow_extension, 1)
        else:
            await _busy(ari, channel)
    except (AriError, AriConnectionError, OSError, TimeoutError) as e:
        log.error("call.overflow_failed", channel=channel.id, action=cap.overflow, error=str(e))
        await ari.hangup(channel.id, "congestion")


async def _busy(ari: AriClient, channel: Channel) -> None:
    await ari.answer(channel.id)
    await ari.play_to_end(channel.id, BUSY_MEDIA, BUSY_PLAYBACK_MAX_S)
    await ari.hangup(channel.id, "normal")
