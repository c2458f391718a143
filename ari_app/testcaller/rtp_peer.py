"""The media side of a test call: one UDP socket that sends PCMU in 20 ms packets paced by the
monotonic clock (silence between utterances, like a real phone), sends RFC 4733 DTMF, and
records every received packet with its arrival time so tests can measure latency on the wire."""

from __future__ import annotations

import asyncio
import contextlib
import math
import secrets
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from ari_app.media.codecs.g711 import ulaw_decode, ulaw_encode
from ari_app.media.constants import FRAME_INTERVAL, FRAME_SAMPLES
from ari_app.media.dtmf import DIGITS, DtmfEvent, build_dtmf_packets
from ari_app.media.rtp import RtpError as RtpPacketError
from ari_app.media.rtp import RtpPacket
from ari_app.testcaller.sdp import PT_PCMU, PT_TELEPHONE_EVENT

FRAME_S = FRAME_INTERVAL
ULAW_SILENCE = b"\xff" * FRAME_SAMPLES
# As the lab's pcaps: 8 updates every 20 ms, then the end packet 3 times (duration 180 ms).
DTMF_DURATION_MS = 180
DTMF_END_PACKETS = 3
SILENCE_DBFS = -120.0


class RtpError(Exception):
    """The RTP socket cannot be used (e.g. no remote address yet); the message says why."""


def frame_dbfs(pcm: np.ndarray) -> float:
    if pcm.size == 0:
        return SILENCE_DBFS
    rms = math.sqrt(float(np.mean(pcm.astype(np.float64) ** 2)))
    return 20 * math.log10(rms / 32768) if rms > 0 else SILENCE_DBFS


@dataclass(frozen=True)
class ReceivedPacket:
    arrival: float  # time.monotonic() when the datagram was read
    seq: int
    timestamp: int
    ssrc: int
    payload_type: int
    marker: bool
    pcm: np.ndarray | None  # decoded audio for PCMU packets
    dtmf: DtmfEvent | None  # for telephone-event packets
    dbfs: float = SILENCE_DBFS


@dataclass(frozen=True)
class SentPacket:
    sent_at: float
    seq: int
    timestamp: int
    payload_type: int
    dbfs: float
    label: str


@dataclass(frozen=True)
class SentSpan:
    """What one play()/send_dtmf() put on the wire: first and last packet send times."""

    label: str
    start: float
    end: float


@dataclass
class _Frame:
    payload: bytes
    payload_type: int
    marker: bool = False
    label: str = ""
    dbfs: float = SILENCE_DBFS
    event_start: bool = False  # first packet of a DTMF event: pins the event's RTP timestamp
    done: asyncio.Future[SentSpan] | None = None
    first: bool = False


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, peer: RtpPeer) -> None:
        self.peer = peer

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.peer._on_datagram(data, time.monotonic())


@dataclass
class RtpPeer:
    """One RTP endpoint. ``await open()``, ``set_remote()``, ``start()``, then play/send_dtmf."""

    local_host: str = "127.0.0.1"
    local_port: int = 0
    send_silence: bool = True  # keep sending silence when idle (as phones do)
    received: list[ReceivedPacket] = field(default_factory=list)
    sent: list[SentPacket] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._transport: asyncio.DatagramTransport | None = None
        self._remote: tuple[str, int] | None = None
        self._queue: deque[_Frame] = deque()
        self._sender: asyncio.Task[None] | None = None
        self._ssrc = secrets.randbits(32)
        self._seq = secrets.randbits(16)
        self._ts = secrets.randbits(32)
        self._event_ts = 0
        self._job_started = 0.0  # send time of the first packet of the job being sent

    # ------------------------------------------------------------------ lifecycle
    async def open(self) -> int:
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Protocol(self), local_addr=(self.local_host, self.local_port)
            )
        except OSError as e:
            raise RtpError(f"cannot bind RTP socket on {self.local_host}:{self.local_port}: {e}") from None
        self._transport = transport
        self.local_port = transport.get_extra_info("sockname")[1]
        return self.local_port

    def set_remote(self, host: str, port: int) -> None:
        self._remote = (host, port)

    @property
    def remote(self) -> tuple[str, int] | None:
        return self._remote

    def start(self) -> None:
        if self._transport is None or self._remote is None:
            raise RtpError("RTP peer needs open() and set_remote() before start()")
        if self._sender is None:
            self._sender = asyncio.create_task(self._send_loop(), name="rtp-sender")

    async def close(self) -> None:
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
            self._sender = None
        for frame in self._queue:
            if frame.done is not None and not frame.done.done():
                frame.done.cancel()
        self._queue.clear()
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    # ------------------------------------------------------------------ sending
    async def play(self, pcm: np.ndarray, label: str = "audio") -> SentSpan:
        """Queue 8 kHz int16 mono PCM; resolves when its last packet has been sent."""
        self.start()
        pcm = np.asarray(pcm, dtype=np.int16)
        if pcm.size == 0:
            now = time.monotonic()
            return SentSpan(label, now, now)
        pad = (-pcm.size) % FRAME_SAMPLES
        if pad:
            pcm = np.concatenate([pcm, np.zeros(pad, dtype=np.int16)])
        frames = pcm.reshape(-1, FRAME_SAMPLES)
        done: asyncio.Future[SentSpan] = asyncio.get_running_loop().create_future()
        for i, chunk in enumerate(frames):
            self._queue.append(
                _Frame(
                    ulaw_encode(chunk.astype("<i2").tobytes()),
                    PT_PCMU,
                    label=label,
                    dbfs=frame_dbfs(chunk),
                    first=i == 0,
                    done=done if i == len(frames) - 1 else None,
                )
            )
        return await done

    async def send_dtmf(self, digit: str, volume: int = 10) -> SentSpan:
        """One RFC 4733 event: 8 updates every 20 ms then 3 end packets (E bit), same timestamp."""
        self.start()
        if len(digit) != 1 or digit.upper() not in DIGITS:
            raise RtpError(f"{digit!r} is not a DTMF digit (0-9, *, #, A-D)")
        # Sequence numbers and timestamps are assigned when each packet goes out; only payloads here.
        packets = build_dtmf_packets(
            digit,
            ssrc=0,
            sequence=0,
            timestamp=0,
            payload_type=PT_TELEPHONE_EVENT,
            duration_ms=DTMF_DURATION_MS,
            volume=volume,
            end_repeats=DTMF_END_PACKETS,
        )
        done: asyncio.Future[SentSpan] = asyncio.get_running_loop().create_future()
        for i, packet in enumerate(packets):
            self._queue.append(
                _Frame(
                    packet.payload,
                    PT_TELEPHONE_EVENT,
                    marker=packet.marker,
                    label=f"dtmf {digit}",
                    first=i == 0,
                    event_start=i == 0,
                    done=done if i == len(packets) - 1 else None,
                )
            )
        return await done

    async def _send_loop(self) -> None:
        # Absolute deadlines from the monotonic clock: no drift however long the call.
        next_at = time.monotonic()
        while True:
            delay = next_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.1:  # the loop stalled; restart the schedule instead of bursting
                next_at = time.monotonic()
            self._send_one()
            next_at += FRAME_S

    def _send_one(self) -> None:
        frame = self._queue.popleft() if self._queue else None
        if frame is None and not self.send_silence:
            self._ts = (self._ts + FRAME_SAMPLES) & 0xFFFFFFFF
            return
        if frame is None:
            frame = _Frame(ULAW_SILENCE, PT_PCMU, label="silence")
        if frame.event_start:
            self._event_ts = self._ts
        ts = self._event_ts if frame.payload_type == PT_TELEPHONE_EVENT else self._ts
        packet = RtpPacket(frame.payload_type, self._seq, ts, self._ssrc, frame.payload, frame.marker)
        now = time.monotonic()
        if self._transport is not None and self._remote is not None:
            self._transport.sendto(packet.serialize(), self._remote)
        self.sent.append(SentPacket(now, self._seq, ts, frame.payload_type, frame.dbfs, frame.label))
        if frame.first:
            self._job_started = now
        if frame.done is not None and not frame.done.done():
            frame.done.set_result(SentSpan(frame.label, self._job_started, now))
        self._seq = (self._seq + 1) & 0xFFFF
        self._ts = (self._ts + FRAME_SAMPLES) & 0xFFFFFFFF

    # ------------------------------------------------------------------ receiving
    def _on_datagram(self, data: bytes, arrival: float) -> None:
        try:
            packet = RtpPacket.parse(data)
        except RtpPacketError:
            return  # not RTP (e.g. a stray RTCP or STUN packet)
        pcm = dtmf = None
        dbfs = SILENCE_DBFS
        if packet.payload_type == PT_PCMU:
            pcm = np.frombuffer(ulaw_decode(packet.payload), dtype="<i2")
            dbfs = frame_dbfs(pcm)
        elif packet.payload_type == PT_TELEPHONE_EVENT:
            with contextlib.suppress(RtpPacketError):
                dtmf = DtmfEvent.parse(packet.payload)
        self.received.append(
            ReceivedPacket(
                arrival,
                packet.sequence,
                packet.timestamp,
                packet.ssrc,
                packet.payload_type,
                packet.marker,
                pcm,
                dtmf,
                dbfs,
            )
        )

    def received_pcm(self, fill_gaps: bool = True, since: float | None = None) -> np.ndarray:
        """Received audio in arrival order (only what arrived after monotonic ``since``, if given);
        gaps longer than a packet are filled with silence."""
        parts: list[np.ndarray] = []
        last: float | None = None
        for p in self.received:
            if p.pcm is None or (since is not None and p.arrival <= since):
                continue
            if fill_gaps and last is not None:
                missing = round((p.arrival - last) / FRAME_S) - 1
                if missing > 0:
                    parts.append(np.zeros(missing * FRAME_SAMPLES, dtype=np.int16))
            parts.append(p.pcm)
            last = p.arrival
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)

    def voiced_spans(
        self, threshold_dbfs: float = -40.0, max_gap_s: float = 0.3
    ) -> list[tuple[float, float]]:
        """(first, last) arrival times of runs of voiced packets; quiet gaps up to max_gap_s are bridged."""
        spans: list[tuple[float, float]] = []
        for p in self.received:
            if p.pcm is None or p.dbfs < threshold_dbfs:
                continue
            if spans and p.arrival - spans[-1][1] <= max_gap_s:
                spans[-1] = (spans[-1][0], p.arrival)
            else:
                spans.append((p.arrival, p.arrival))
        return spans

    def first_voiced_after(self, t: float, threshold_dbfs: float = -40.0) -> float | None:
        """Arrival time of the first voiced packet received after monotonic time t."""
        for p in self.received:
            if p.arrival > t and p.pcm is not None and p.dbfs >= threshold_dbfs:
                return p.arrival
        return None

    def last_voiced_sent(self, threshold_dbfs: float = -40.0) -> float | None:
        """Send time of the last voiced packet we sent (the caller's end of speech on the wire)."""
        for p in reversed(self.sent):
            if p.payload_type == PT_PCMU and p.dbfs >= threshold_dbfs:
                return p.sent_at
        return None
