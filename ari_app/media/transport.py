"""The boundary between call audio and everything above it (speech, dialog).

Speech and dialog code only ever sees 8 kHz mono int16 little-endian PCM through
`MediaTransport`; ExternalMedia RTP (`RtpTransport`) is one implementation, and AudioSocket or
chan_websocket can be added later as others without touching that code.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from typing import Protocol, runtime_checkable


class MediaError(Exception):
    """A media operation cannot be done (closed transport, no remote address, no free port...)."""


@dataclass(frozen=True, slots=True)
class AudioFrame:
    """Inbound audio: 8 kHz mono int16 little-endian PCM, normally 20 ms = 320 bytes."""

    pcm: bytes
    received_at: float  # time.monotonic() when the packet arrived
    sequence: int  # the transport's sequence number for the frame (RTP sequence for RTP)


@dataclass(frozen=True, slots=True)
class PlayResult:
    frames_sent: int
    stopped: bool  # True when stop_playback() (barge-in) or close() ended it early
    first_frame_at: float | None  # time.monotonic() the first frame went out; None if none did


@dataclass(slots=True)
class MediaStats:
    packets_in: int = 0  # valid packets accepted from the remote
    packets_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    bad_packets: int = 0  # not parseable as RTP (garbage, truncated, wrong version, RTCP)
    wrong_payload_type: int = 0
    unexpected_source: int = 0  # valid RTP from an address that is not our remote
    late_dropped: int = 0
    duplicate_dropped: int = 0
    lost: int = 0  # sequence gaps given up on by the jitter buffer
    overflow_dropped: int = 0  # inbound frames dropped because nobody consumed frames()
    send_errors: int = 0
    pacer_reanchors: int = 0
    last_bad_reason: str = ""

    def as_dict(self) -> dict[str, int | str]:
        return asdict(self)


@runtime_checkable
class MediaTransport(Protocol):
    local_port: int
    stats: MediaStats

    def frames(self) -> AsyncIterator[AudioFrame]:
        """Inbound audio, in order; the iterator ends when the transport is closed."""
        ...

    async def play(self, pcm: bytes | AsyncIterator[bytes], *, interruptible: bool = True) -> PlayResult:
        """Send 8 kHz int16 PCM in real time; return when all is sent or playback was stopped."""
        ...

    def stop_playback(self) -> None:
        """Barge-in: stop interruptible playback within one frame and drop queued audio."""
        ...

    @property
    def playing(self) -> bool: ...

    async def close(self) -> None:
        """Release the socket/port; safe to call more than once."""
        ...
