"""A small reorder buffer for inbound RTP.

Asterisk on loopback rarely reorders, so this is deliberately minimal: in-order packets pass
straight through (no added latency); a gap holds later packets back until the missing one shows
up or `depth` packets are waiting, then the gap is declared lost. Late and duplicate packets
are dropped and counted. Sequence numbers are compared with 16-bit wraparound.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Generic, TypeVar

from ari_app.media.rtp import seq_diff

T = TypeVar("T")


@dataclass(slots=True)
class JitterStats:
    released: int = 0
    late: int = 0  # arrived after we had given up on it
    duplicate: int = 0
    lost: int = 0  # sequence numbers skipped because they never came in time
    resets: int = 0  # sequence jumps too big to be reordering (new stream, SSRC change)


class JitterBuffer(Generic[T]):
    def __init__(self, depth: int = 3, *, reset_gap: int = 100) -> None:
        if depth < 1:
            raise ValueError(f"jitter buffer depth={depth}: must be at least 1 frame")
        self.depth = depth
        self.reset_gap = reset_gap
        self.stats = JitterStats()
        self._next: int | None = None
        self._held: dict[int, T] = {}
        self._given_up: deque[int] = deque(maxlen=64)  # to tell late packets from duplicates

    def reset(self) -> None:
        """Forget the current stream (call on SSRC change); held packets are discarded."""
        self._next = None
        self._held.clear()
        self._given_up.clear()

    def push(self, sequence: int, item: T) -> list[T]:
        """Add one packet's item; return the items now ready, in sequence order."""
        if self._next is None:
            self._next = sequence
        d = seq_diff(sequence, self._next)
        if abs(d) > self.reset_gap:
            # Not reordering: the sender restarted its numbering. Deliver what we held and re-sync.
            out = self.flush()
            self.stats.resets += 1
            self._next = sequence
            return out + self.push(sequence, item)
        if d < 0:
            if sequence in self._given_up:
                self.stats.late += 1
            else:
                self.stats.duplicate += 1
            return []
        if sequence in self._held:
            self.stats.duplicate += 1
            return []
        self._held[sequence] = item
        out = self._release_run()
        if len(self._held) >= self.depth:
            self._skip_to_oldest_held()
            out += self._release_run()
        return out

    def flush(self) -> list[T]:
        """Release everything held, skipping gaps (end of stream)."""
        out: list[T] = []
        while self._held:
            self._skip_to_oldest_held()
            out += self._release_run()
        return out

    def _release_run(self) -> list[T]:
        out: list[T] = []
        assert self._next is not None
        while self._next in self._held:
            out.append(self._held.pop(self._next))
            self._next = (self._next + 1) & 0xFFFF
        self.stats.released += len(out)
        return out

    def _skip_to_oldest_held(self) -> None:
        assert self._next is not None
        oldest = min(self._held, key=lambda s: seq_diff(s, self._next))  # type: ignore[arg-type]
        gap = seq_diff(oldest, self._next)
        for i in range(gap):
            self._given_up.append((self._next + i) & 0xFFFF)
        self.stats.lost += gap
        self._next = oldest
