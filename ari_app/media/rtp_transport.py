"""`MediaTransport` over plain RTP/UDP, for Asterisk ExternalMedia channels.

Asterisk sends the caller's audio to our port from its own RTP port and takes our audio back on
that same address (symmetric RTP). We learn that address from the first valid packet, unless the
call code already set it with `set_remote()` (from the channel's UNICASTRTP_LOCAL_ADDRESS/PORT).
Anything else reaching the port (garbage, RTCP, other payload types, other senders) is dropped
and counted in `stats`, never raised: a stray packet must not break a call. An unexpected payload
type (a codec mismatch leaves the bot deaf) and unusable datagrams are also counted in Prometheus
(media/metrics.py) and logged once per transport, with the sender: a diagnosis, not a flood.
RFC 4733 telephone-events are expected and dropped quietly (Asterisk reports digits through ARI).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from prometheus_client import Counter

from ari_app import stage_cpu
from ari_app.media.clock import MediaClock, OutboundQueue
from ari_app.media.codecs import Codec, CodecName, get_codec
from ari_app.media.constants import FRAME_INTERVAL
from ari_app.media.dtmf import DEFAULT_PAYLOAD_TYPE as TELEPHONE_EVENT_PT
from ari_app.media.framing import pcm_frames
from ari_app.media.jitterbuffer import JitterBuffer
from ari_app.media.metrics import RTP_MALFORMED, RTP_UNEXPECTED_PAYLOAD
from ari_app.media.ports import PortPool
from ari_app.media.rtp import RtpError, RtpPacket
from ari_app.media.rtp_stream import OutboundRtpStream
from ari_app.media.transport import AudioFrame, MediaError, MediaStats, PlayResult

log = logging.getLogger(__name__)

Address = tuple[str, int]


@dataclass(slots=True)
class _Inbound:
    sequence: int
    payload: bytes
    received_at: float


@dataclass(slots=True)
class _Progress:
    frames_sent: int = 0
    first_frame_at: float | None = None


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, owner: RtpTransport) -> None:
        self.owner = owner
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple) -> None:  # type: ignore[override]
        with stage_cpu.measured("rtp_in"):
            self.owner._on_datagram(data, (addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:
        # e.g. ICMP port unreachable after the far end went away: count, keep going.
        self.owner.stats.send_errors += 1

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)


class RtpTransport:
    """One ExternalMedia RTP stream: inbound frames via `frames()`, outbound via `play()`."""

    def __init__(
        self,
        sock: socket.socket,
        codec: Codec,
        *,
        pool: PortPool | None = None,
        jitter_depth: int = 3,
        max_queued_frames: int = 500,
        remote_wait: float = 2.0,
    ) -> None:
        self.local_host, self.local_port = sock.getsockname()[:2]
        self.codec = codec
        self.stats = MediaStats()
        self.remote: Address | None = None
        self.remote_ssrc: int | None = None
        self._sock = sock
        self._pool = pool
        self._remote_known = asyncio.Event()
        self._remote_wait = remote_wait
        self._jitter: JitterBuffer[_Inbound] = JitterBuffer(jitter_depth)
        self._queue: asyncio.Queue[AudioFrame | None] = asyncio.Queue(max_queued_frames)
        self._outbound = OutboundRtpStream(codec.payload_type)
        self._play_lock = asyncio.Lock()
        self._current: tuple[asyncio.Task[None], bool] | None = None  # (task, interruptible)
        self._stop_generation = 0
        self._closed = False
        self._transport: asyncio.DatagramTransport | None = None
        self._protocol: _Protocol | None = None
        # received payload type -> its unexpected-payload counter (made on first sight: no
        # per-packet label lookup); the first one made is the one logged.
        self._wrong_pt_counters: dict[int, Counter] = {}

    @classmethod
    async def open(
        cls,
        pool: PortPool,
        fmt: CodecName = "ulaw",
        *,
        jitter_depth: int = 3,
        max_queued_frames: int = 500,
        remote_wait: float = 2.0,
    ) -> RtpTransport:
        """Bind a free port from ``pool`` and start receiving; the port returns to the pool on close.

        ``remote_wait``: how long `play()` waits for Asterisk's address when none is known yet.
        """
        codec = get_codec(fmt)
        sock, port = pool.acquire()
        try:
            self = cls(
                sock,
                codec,
                pool=pool,
                jitter_depth=jitter_depth,
                max_queued_frames=max_queued_frames,
                remote_wait=remote_wait,
            )
            loop = asyncio.get_running_loop()
            transport, protocol = await loop.create_datagram_endpoint(lambda: _Protocol(self), sock=sock)
        except BaseException:
            sock.close()
            pool.release(port)
            raise
        self._transport = transport
        self._protocol = protocol
        self._out = OutboundQueue(
            sock, lambda: self.remote, lambda payload, at: self._outbound.packet(payload, at=at).serialize()
        )
        MediaClock.shared().add(self._out)
        log.debug("rtp transport listening on %s:%d (%s)", self.local_host, port, fmt)
        return self

    # -- remote address ------------------------------------------------------------------
    def set_remote(self, host: str, port: int) -> None:
        """Send to (and accept only from) Asterisk's RTP address for this channel.

        An unspecified host (0.0.0.0 or ::, what UNICASTRTP_LOCAL_ADDRESS shows when Asterisk's
        RTP is bound to all interfaces) names no address we could send to or check against, so
        it is ignored and the remote is learned from the first packet instead.
        """
        if not 0 < port < 65536:
            raise ValueError(f"remote RTP port {port} outside 1..65535")
        if host in ("0.0.0.0", "::", ""):
            log.info("port %d: remote host %r is unspecified; will learn it", self.local_port, host)
            return
        self.remote = (host, port)
        self._remote_known.set()

    async def wait_remote(self, timeout: float) -> Address:
        try:
            await asyncio.wait_for(self._remote_known.wait(), timeout)
        except TimeoutError:
            raise MediaError(
                f"no remote RTP address for port {self.local_port} after {timeout:g} s: Asterisk has "
                "sent nothing yet and set_remote() was not called"
            ) from None
        assert self.remote is not None
        return self.remote

    # -- inbound -------------------------------------------------------------------------
    def _on_datagram(self, data: bytes, addr: Address) -> None:
        if self._closed:
            return
        received_at = time.monotonic()
        try:
            packet = RtpPacket.parse(data)
        except RtpError as e:
            self._bad(f"from {addr[0]}:{addr[1]}: {e}")
            return
        if packet.payload_type != self.codec.payload_type:
            self._wrong_payload(packet.payload_type, addr)
            return
        if self.remote is None:
            self.remote = addr
            self._remote_known.set()
            log.debug("port %d: remote RTP learned as %s:%d", self.local_port, *addr)
        elif addr != self.remote:
            self.stats.unexpected_source += 1
            return
        if packet.ssrc != self.remote_ssrc:
            if self.remote_ssrc is not None:  # Asterisk restarted the stream (e.g. re-bridged)
                self._deliver(self._jitter.flush())
                self._jitter.reset()
            self.remote_ssrc = packet.ssrc
        self.stats.packets_in += 1
        self.stats.bytes_in += len(data)
        self._deliver(
            self._jitter.push(packet.sequence, _Inbound(packet.sequence, packet.payload, received_at))
        )
        js = self._jitter.stats
        self.stats.late_dropped, self.stats.duplicate_dropped, self.stats.lost = (
            js.late,
            js.duplicate,
            js.lost,
        )

    def _wrong_payload(self, pt: int, addr: Address) -> None:
        self.stats.wrong_payload_type += 1
        if pt == TELEPHONE_EVENT_PT:
            return
        counter = self._wrong_pt_counters.get(pt)
        if counter is None:
            if not self._wrong_pt_counters:  # the first unexpected type of this transport
                log.warning(
                    "port %d: dropping RTP with payload type %d from %s:%d, expected %d (%s, "
                    "media.format); if that is Asterisk's stream the caller is not heard "
                    "(logged once per call, counted in iva_rtp_unexpected_payload)",
                    self.local_port, pt, addr[0], addr[1], self.codec.payload_type, self.codec.name,
                )  # fmt: skip
            counter = RTP_UNEXPECTED_PAYLOAD.labels(str(self.codec.payload_type), str(pt))
            self._wrong_pt_counters[pt] = counter
        counter.inc()

    def _bad(self, reason: str) -> None:
        self.stats.bad_packets += 1
        self.stats.last_bad_reason = reason
        RTP_MALFORMED.inc()
        if self.stats.bad_packets == 1:  # enough to diagnose, without flooding the log
            log.warning(
                "port %d: dropping unusable datagrams, the first %s (logged once per call, "
                "counted in iva_rtp_malformed)",
                self.local_port,
                reason,
            )

    def _deliver(self, items: list[_Inbound]) -> None:
        for item in items:
            if not item.payload:  # a keep-alive or empty packet: no audio to hand on
                continue
            try:
                pcm = self.codec.decode(item.payload)
            except ValueError as e:
                host, port = self.remote or ("?", 0)  # set: only the remote's packets get here
                self._bad(f"from {host}:{port}: seq {item.sequence}: {self.codec.name} payload: {e}")
                continue
            self._enqueue(AudioFrame(pcm=pcm, received_at=item.received_at, sequence=item.sequence))

    def _enqueue(self, item: AudioFrame | None) -> None:
        if self._queue.full():  # consumer fell behind: drop the oldest, keep the newest audio
            self._queue.get_nowait()
            self.stats.overflow_dropped += 1
        self._queue.put_nowait(item)

    async def frames(self) -> AsyncIterator[AudioFrame]:
        while True:
            if self._closed and self._queue.empty():
                return
            frame = await self._queue.get()
            if frame is None:
                return
            yield frame

    # -- outbound ------------------------------------------------------------------------
    @property
    def playing(self) -> bool:
        return self._current is not None

    async def play(self, pcm: bytes | AsyncIterator[bytes], *, interruptible: bool = True) -> PlayResult:
        """Send 8 kHz int16 PCM paced at real time. Plays queue up behind each other.

        Raises MediaError if the transport is closed or no remote address becomes known within
        ``remote_wait`` seconds, ValueError if the PCM is not whole 16-bit samples.
        """
        if self._closed:
            raise MediaError(f"play() on closed RTP transport (port {self.local_port})")
        generation = self._stop_generation
        async with self._play_lock:
            if self._closed or (interruptible and generation != self._stop_generation):
                return PlayResult(0, True, None)  # flushed by a barge-in while queued
            progress = _Progress()
            task = asyncio.create_task(self._send_loop(pcm, progress))
            self._current = (task, interruptible)
            try:
                await asyncio.wait({task})
            finally:
                self._current = None
                if not task.done():  # our caller was cancelled: stop sending too
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            if task.cancelled():
                return PlayResult(progress.frames_sent, True, progress.first_frame_at)
            task.result()  # re-raise a bad-input or no-remote error in the caller
            return PlayResult(progress.frames_sent, False, progress.first_frame_at)

    def stop_playback(self) -> None:
        self._stop_generation += 1
        if self._current is not None and self._current[1]:
            self._current[0].cancel()

    async def _send_loop(self, source: bytes | AsyncIterator[bytes], progress: _Progress) -> None:
        """Prepare packets up to LOOKAHEAD frames ahead; the media clock thread puts one on the
        wire every 20 ms (see clock.py for why a thread)."""
        await (self.wait_remote(self._remote_wait) if self.remote is None else asyncio.sleep(0))
        out = self._out
        self._outbound.start_talkspurt()
        due: float | None = None

        def sent(nbytes: int, at: float) -> None:
            self.stats.packets_out += 1
            self.stats.bytes_out += nbytes
            progress.frames_sent += 1
            if progress.first_frame_at is None:
                progress.first_frame_at = at

        try:
            async for frame in pcm_frames(source):
                await out.wait_space()
                now = time.monotonic()
                if due is None:
                    due = now
                elif len(out) == 0 and now > due + FRAME_INTERVAL:
                    # The source fell behind real time and the wire went quiet: a new talkspurt.
                    self._outbound.start_talkspurt()
                    self.stats.pacer_reanchors += 1
                    due = now
                else:
                    due += FRAME_INTERVAL
                out.push(self.codec.encode(frame), due, sent)
            await out.wait_empty()
        finally:
            out.clear()  # stopped (barge-in) or failed: nothing more of this prompt goes out

    # -- lifetime ------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop_generation += 1
        if hasattr(self, "_out"):
            MediaClock.shared().remove(self._out)
            self._out.clear()
        if self._current is not None:
            self._current[0].cancel()  # close stops even non-interruptible playback
        self._enqueue(None)
        if self._transport is not None:
            self._transport.close()
            if self._protocol is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self._protocol.lost), 1.0)
        else:
            self._sock.close()
        if self._pool is not None:
            self._pool.release(self.local_port)
