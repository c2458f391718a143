from __future__ import annotations

import pytest

from ari_app.media.jitterbuffer import JitterBuffer


def feed(jb: JitterBuffer[int], seqs: list[int]) -> list[int]:
    out: list[int] = []
    for s in seqs:
        out += jb.push(s, s)
    return out


def test_in_order_passes_straight_through() -> None:
    jb: JitterBuffer[int] = JitterBuffer(3)
    assert [jb.push(s, s) for s in (10, 11, 12)] == [[10], [11], [12]]


def test_reordering_is_repaired() -> None:
    jb: JitterBuffer[int] = JitterBuffer(3)
    assert feed(jb, [1, 3, 2, 4]) == [1, 2, 3, 4]
    assert jb.stats.lost == 0 and jb.stats.released == 4


def test_wraparound() -> None:
    jb: JitterBuffer[int] = JitterBuffer(3)
    assert feed(jb, [65534, 0, 65535, 1]) == [65534, 65535, 0, 1]


def test_duplicates_and_late_packets_are_dropped_and_counted() -> None:
    jb: JitterBuffer[int] = JitterBuffer(3)
    # 2 is missing; after 3 packets wait behind the gap it is declared lost.
    assert feed(jb, [1, 3, 3, 4, 5]) == [1, 3, 4, 5]
    assert jb.stats.duplicate == 1 and jb.stats.lost == 1
    assert jb.push(2, 2) == [] and jb.stats.late == 1  # the lost one turns up too late
    assert jb.push(4, 4) == [] and jb.stats.duplicate == 2  # already delivered


def test_flush_and_big_jump_resync() -> None:
    jb: JitterBuffer[int] = JitterBuffer(3)
    assert feed(jb, [1, 3]) == [1]
    assert jb.flush() == [3] and jb.stats.lost == 1
    assert feed(jb, [40000, 40001]) == [40000, 40001]  # new numbering, not 36000 late packets
    assert jb.stats.resets == 1 and jb.stats.late == 0


def test_depth_must_be_positive() -> None:
    with pytest.raises(ValueError, match="depth=0"):
        JitterBuffer(0)
