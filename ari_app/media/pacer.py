"""Send-side timing: one 20 ms frame every 20 ms, and the RTP numbering that goes with it.

`Pacer` keeps an absolute monotonic schedule (``deadline += interval``) instead of sleeping a
fixed 20 ms after each send, so wake-up latency never accumulates into drift. After an event
loop stall it catches up by sending the overdue frames at once, but only up to a few frames:
further behind than that it re-anchors the schedule on "now" (a burst would overflow the far
end's jitter buffer and be heard as a glitch anyway).

Silence policy: when there is nothing to play we send nothing (no comfort noise). Asterisk's
chan_rtp and bridges cope with gaps, and every new talkspurt starts with the marker bit and a
timestamp that has advanced by the wall-clock length of the gap, as RFC 3550 asks.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable

from ari_app.media.codecs import SAMPLE_RATE, SAMPLES_PER_FRAME
from ari_app.media.rtp import RtpPacket

FRAME_INTERVAL = 0.020


class Pacer:
    def __init__(
        self,
        interval: float = FRAME_INTERVAL,
        *,
        max_lag_frames: int = 3,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"pacer interval={interval}: must be positive seconds")
        if max_lag_frames < 0:
            raise ValueError(f"max_lag_frames={max_lag_frames}: must be >= 0")
        self.interval = interval
        self.max_lag = max_lag_frames * interval
        self._clock = clock
        self._next: float | None = None
        self.ticks = 0
        self.reanchors = 0  # times we fell more than max_lag behind and restarted the schedule
        self.late_ticks = 0  # ticks that were already due when asked for (caught up, no sleep)

    def start(self) -> None:
        """Anchor the schedule: the next `tick()` returns at once, then every `interval`."""
        self._next = self._clock()

    @property
    def started(self) -> bool:
        return self._next is not None

    async def tick(self) -> float:
        """Sleep until the next frame is due and return its scheduled time."""
        if self._next is None:
            self.start()
        assert self._next is not None
        now = self._clock()
        lag = now - self._next
        if lag < 0:
            await asyncio.sleep(-lag)
        elif lag > self.max_lag:
            self.reanchors += 1
            self._next = now
        elif lag > 0.001:
            self.late_ticks += 1
        due = self._next
        self._next = due + self.interval
        self.ticks += 1
        return due


class OutboundRtpStream:
    """Numbering for the packets we send: random SSRC and starting points (RFC 3550 §5.1),
    sequence +1 per packet, timestamp +160 per 20 ms frame, marker on each talkspurt's first packet.
    """

    def __init__(
        self,
        payload_type: int,
        *,
        ssrc: int | None = None,
        sequence: int | None = None,
        timestamp: int | None = None,
        samples_per_frame: int = SAMPLES_PER_FRAME,
        sample_rate: int = SAMPLE_RATE,
    ) -> None:
        self.payload_type = payload_type
        self.ssrc = secrets.randbits(32) if ssrc is None else ssrc
        self._seq = secrets.randbits(16) if sequence is None else sequence & 0xFFFF
        self._ts = secrets.randbits(32) if timestamp is None else timestamp & 0xFFFFFFFF
        self._step = samples_per_frame
        self._rate = sample_rate
        self._last_at: float | None = None
        self._new_talkspurt = True

    def start_talkspurt(self) -> None:
        """The next packet begins new audio after silence: marker bit and a timestamp jump."""
        self._new_talkspurt = True

    def packet(self, payload: bytes, *, at: float) -> RtpPacket:
        """The packet carrying one frame, scheduled for monotonic time ``at``."""
        marker = self._new_talkspurt
        if self._last_at is not None:
            step = self._step
            if marker:
                # Advance by the silence we skipped, in whole frames, at least one.
                frames = round((at - self._last_at) * self._rate / self._step)
                step = max(1, frames) * self._step
            self._ts = (self._ts + step) & 0xFFFFFFFF
            self._seq = (self._seq + 1) & 0xFFFF
        self._last_at = at
        self._new_talkspurt = False
        return RtpPacket(
            payload_type=self.payload_type,
            sequence=self._seq,
            timestamp=self._ts,
            ssrc=self.ssrc,
            marker=marker,
            payload=payload,
        )
