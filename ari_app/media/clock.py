"""One real-time sender thread for every outbound RTP stream in the process.

Why a thread: the event loop also runs VAD, understanding and the dialogue for every call. With
20 calls, a burst of that work delays an asyncio timer by 40-90 ms, and the caller hears a gap
(measured on the wire: 240 gaps > 40 ms in 9120 intervals). Here the asyncio side only *prepares*
packets, up to ``LOOKAHEAD`` frames ahead, and this thread sends one per stream every 20 ms on an
absolute monotonic schedule. A sleeping thread gets the GIL back within Python's switch interval
(5 ms), so loop stalls no longer reach the wire. Barge-in clears a stream's queue: at most the
packet being sent at that instant still goes out.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import socket
import threading
import time
from collections.abc import Callable

from ari_app import stage_cpu
from ari_app.media.constants import FRAME_INTERVAL

LOOKAHEAD = 10  # frames prepared ahead of the wire (200 ms): more than any loop stall we saw
MAX_LAG = 0.060  # further behind than this, re-anchor instead of bursting


class OutboundQueue:
    """Packets of one stream waiting for their 20 ms slot."""

    def __init__(
        self,
        sock: socket.socket,
        remote: Callable[[], tuple[str, int] | None],
        build: Callable[[bytes, float], bytes],
    ) -> None:
        # ``build`` numbers and serialises a packet when it is sent, so frames dropped by a
        # barge-in never use up sequence numbers (the far end would count them as lost).
        self._build = build
        self._sock = sock
        self._remote = remote
        self._loop = asyncio.get_running_loop()
        self._packets: collections.deque[tuple[bytes, Callable[[int, float], None] | None]] = (
            collections.deque()
        )
        self._lock = threading.Lock()
        self._space = asyncio.Event()
        self._empty = asyncio.Event()
        self._empty.set()
        self.sent = 0
        self.bytes = 0
        self.errors = 0

    def __len__(self) -> int:
        return len(self._packets)

    def push(self, payload: bytes, due: float, on_sent: Callable[[int, float], None] | None = None) -> None:
        with self._lock:
            self._packets.append((payload, due, on_sent))
            self._empty.clear()
            if len(self._packets) >= LOOKAHEAD:
                self._space.clear()

    async def wait_space(self) -> None:
        while len(self._packets) >= LOOKAHEAD:
            self._space.clear()
            await self._space.wait()

    async def wait_empty(self) -> None:
        await self._empty.wait()

    def clear(self) -> None:
        with self._lock:
            self._packets.clear()
        self._space.set()
        self._empty.set()

    def send_one(self) -> None:
        """Called by the clock thread."""
        with self._lock:
            if not self._packets:
                return
            payload, due, on_sent = self._packets.popleft()
            left = len(self._packets)
            packet = self._build(payload, due)
        remote = self._remote()
        at = time.monotonic()
        if remote is not None:
            try:
                self._sock.sendto(packet, remote)
                self.sent += 1
                self.bytes += len(packet)
            except OSError:
                self.errors += 1
        with contextlib.suppress(RuntimeError):  # the loop may be closing
            if on_sent is not None:
                self._loop.call_soon_threadsafe(on_sent, len(packet), at)
            if left < LOOKAHEAD:
                self._loop.call_soon_threadsafe(self._space.set)
            if left == 0:
                self._loop.call_soon_threadsafe(self._empty.set)


class MediaClock:
    _shared: MediaClock | None = None
    _shared_lock = threading.Lock()

    def __init__(self) -> None:
        self._queues: set[OutboundQueue] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.reanchors = 0

    @classmethod
    def shared(cls) -> MediaClock:
        with cls._shared_lock:
            if cls._shared is None:
                cls._shared = MediaClock()
            return cls._shared

    def add(self, q: OutboundQueue) -> None:
        with self._lock:
            self._queues.add(q)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="media-clock", daemon=True)
                self._thread.start()

    def remove(self, q: OutboundQueue) -> None:
        with self._lock:
            self._queues.discard(q)

    def _run(self) -> None:
        due = time.monotonic()
        while True:
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            elif now - due > MAX_LAG:
                self.reanchors += 1
                due = now
            with stage_cpu.measured("media_clock"), self._lock:
                for q in list(self._queues):
                    q.send_one()
            due += FRAME_INTERVAL
