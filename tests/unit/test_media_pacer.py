from __future__ import annotations

import time

import numpy as np
import pytest

from ari_app.media.pacer import OutboundRtpStream, Pacer


class ManualClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_real_time_schedule_over_two_seconds() -> None:
    """Loose structural check (timing targets live in benchmarks/pacing_clock.py)."""
    pacer = Pacer()
    stamps = []
    for _ in range(100):
        due = await pacer.tick()
        stamps.append((due, time.monotonic()))
    dues = np.array([d for d, _ in stamps])
    woke = np.array([w for _, w in stamps])
    assert np.allclose(np.diff(dues), 0.020)  # the schedule itself never drifts
    assert np.max(np.diff(woke)) < 0.040  # no gap longer than two frames
    assert 1.9 < woke[-1] - woke[0] < 2.1  # 99 intervals of 20 ms: no sleep(0.02) drift
    assert np.all(woke >= dues - 0.0005)  # never sends early


async def test_small_stall_catches_up_big_stall_reanchors() -> None:
    clock = ManualClock()
    pacer = Pacer(clock=clock, max_lag_frames=3)
    assert await pacer.tick() == 100.0  # first frame goes at once
    clock.now += 0.050  # stalled 2.5 frames: frames at +20 and +40 ms are overdue
    assert await pacer.tick() == pytest.approx(100.02)
    assert await pacer.tick() == pytest.approx(100.04)
    assert pacer.late_ticks == 2 and pacer.reanchors == 0
    clock.now += 1.0  # a 1 s stall: no 50-frame burst, restart the schedule on now
    assert await pacer.tick() == pytest.approx(101.05)
    assert pacer.reanchors == 1
    assert await pacer.tick() == pytest.approx(101.07)  # then 20 ms steps again (slept for it)


def test_pacer_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="interval=0"):
        Pacer(0)


def test_outbound_numbering_and_talkspurts() -> None:
    s = OutboundRtpStream(0, ssrc=7, sequence=65535, timestamp=0xFFFFFF00)
    p1 = s.packet(b"a", at=10.0)
    p2 = s.packet(b"b", at=10.02)
    assert (p1.marker, p2.marker) == (True, False)
    assert (p1.sequence, p2.sequence) == (65535, 0)
    assert p2.timestamp == (0xFFFFFF00 + 160) & 0xFFFFFFFF  # wraps at 2^32
    s.start_talkspurt()
    p3 = s.packet(b"c", at=11.02)  # one second of silence later
    assert p3.marker and p3.sequence == 1  # sequence counts packets, not time
    assert p3.timestamp == (p2.timestamp + 8000) & 0xFFFFFFFF  # timestamp counts time
    assert {p.ssrc for p in (p1, p2, p3)} == {7}


def test_random_starting_points() -> None:
    a, b = OutboundRtpStream(0), OutboundRtpStream(0)
    assert a.ssrc != b.ssrc or a.packet(b"", at=0).sequence != b.packet(b"", at=0).sequence
