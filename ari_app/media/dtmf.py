"""RFC 4733 telephone-events (DTMF) in RTP.

Asterisk reports the caller's DTMF to us through ARI events, so the agent itself never needs to
parse these; they exist for test callers and tools that must *send* in-band RFC 4733 digits.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ari_app.media.rtp import RtpError, RtpPacket

DIGITS = "0123456789*#ABCD"
_EVENT = struct.Struct("!BBH")
DEFAULT_PAYLOAD_TYPE = 101  # what Asterisk and most phones negotiate for telephone-event/8000


@dataclass(frozen=True, slots=True)
class DtmfEvent:
    event: int  # 0-9 digits, 10 '*', 11 '#', 12-15 'A'-'D'
    end: bool
    volume: int  # 0..63, in -dBm0 (bigger is quieter)
    duration: int  # in RTP timestamp units (1/8000 s), counted from the event's timestamp

    @property
    def digit(self) -> str | None:
        return DIGITS[self.event] if self.event < len(DIGITS) else None

    @classmethod
    def parse(cls, payload: bytes) -> DtmfEvent:
        if len(payload) < 4:
            raise RtpError(f"telephone-event payload is {len(payload)} bytes, needs 4")
        event, flags, duration = _EVENT.unpack_from(payload)
        return cls(event=event, end=bool(flags & 0x80), volume=flags & 0x3F, duration=duration)

    def serialize(self) -> bytes:
        return _EVENT.pack(self.event, (0x80 if self.end else 0) | (self.volume & 0x3F), self.duration)


def build_dtmf_packets(
    digit: str,
    *,
    ssrc: int,
    sequence: int,
    timestamp: int,
    payload_type: int = DEFAULT_PAYLOAD_TYPE,
    duration_ms: int = 100,
    volume: int = 10,
    interval_ms: int = 20,
    end_repeats: int = 3,
) -> list[RtpPacket]:
    """The packets for one digit, to be sent ``interval_ms`` apart.

    All share the event's start timestamp (RFC 4733 §2.5.1.2); the first carries the marker bit;
    the end packet is sent ``end_repeats`` times for loss tolerance. Sequence numbers increment on
    every packet (as Asterisk does) so receivers' reorder logic stays happy.
    """
    d = digit.upper()
    if len(d) != 1 or d not in DIGITS:
        raise ValueError(f"DTMF digit {digit!r} is not one of {DIGITS}")
    if duration_ms < interval_ms:
        raise ValueError(f"duration_ms={duration_ms} is shorter than one packet interval ({interval_ms} ms)")
    if not 0 <= volume <= 63:
        raise ValueError(f"volume={volume} outside 0..63 (-dBm0)")
    step = interval_ms * 8
    total = min(duration_ms * 8, 0xFFFF)
    durations = list(range(step, total, step))
    events = [DtmfEvent(DIGITS.index(d), False, volume, dur) for dur in durations]
    events += [DtmfEvent(DIGITS.index(d), True, volume, total)] * end_repeats
    return [
        RtpPacket(
            payload_type=payload_type,
            sequence=(sequence + i) & 0xFFFF,
            timestamp=timestamp & 0xFFFFFFFF,
            ssrc=ssrc,
            marker=i == 0,
            payload=ev.serialize(),
        )
        for i, ev in enumerate(events)
    ]
