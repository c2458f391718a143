"""RTP packets (RFC 3550): parse what Asterisk sends us, build what we send back.

Parsing is strict about the fixed header (version, lengths, padding) because everything that
reaches our UDP port is untrusted; every rejection says exactly what was wrong.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

RTP_VERSION = 2
_FIXED = struct.Struct("!BBHII")  # V/P/X/CC, M/PT, sequence, timestamp, SSRC
FIXED_HEADER_LEN = _FIXED.size  # 12


class RtpError(ValueError):
    """A datagram is not a usable RTP packet; the message says why."""


@dataclass(frozen=True, slots=True)
class RtpExtension:
    """The RFC 3550 header extension: a 16-bit profile id and raw 32-bit-word data."""

    profile: int
    data: bytes


@dataclass(frozen=True, slots=True)
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrc: tuple[int, ...] = ()
    extension: RtpExtension | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.payload_type <= 127:
            raise RtpError(f"payload_type {self.payload_type} outside 0..127")
        if not 0 <= self.sequence <= 0xFFFF:
            raise RtpError(f"sequence {self.sequence} outside 0..65535")
        if not 0 <= self.timestamp <= 0xFFFFFFFF:
            raise RtpError(f"timestamp {self.timestamp} outside 0..2^32-1")
        if not 0 <= self.ssrc <= 0xFFFFFFFF:
            raise RtpError(f"ssrc {self.ssrc} outside 0..2^32-1")
        if len(self.csrc) > 15:
            raise RtpError(f"{len(self.csrc)} CSRCs given, at most 15 fit in the header")
        if self.extension is not None and len(self.extension.data) % 4:
            raise RtpError(f"extension data is {len(self.extension.data)} bytes, must be a multiple of 4")

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        """Decode one datagram; raise RtpError naming the problem on anything malformed."""
        n = len(data)
        if n < FIXED_HEADER_LEN:
            raise RtpError(f"truncated: {n} bytes, the RTP fixed header alone is {FIXED_HEADER_LEN}")
        b0, b1, sequence, timestamp, ssrc = _FIXED.unpack_from(data)
        version = b0 >> 6
        if version != RTP_VERSION:
            raise RtpError(f"RTP version {version}, expected 2 (first byte 0x{b0:02x})")
        has_padding = bool(b0 & 0x20)
        has_extension = bool(b0 & 0x10)
        cc = b0 & 0x0F
        pos = FIXED_HEADER_LEN
        if n < pos + 4 * cc:
            raise RtpError(f"truncated: header announces {cc} CSRCs but the packet has only {n} bytes")
        csrc = struct.unpack_from(f"!{cc}I", data, pos) if cc else ()
        pos += 4 * cc
        extension = None
        if has_extension:
            if n < pos + 4:
                raise RtpError(f"truncated: extension flag set but only {n - pos} bytes follow the CSRCs")
            profile, words = struct.unpack_from("!HH", data, pos)
            pos += 4
            if n < pos + 4 * words:
                raise RtpError(f"truncated: extension announces {4 * words} bytes, {n - pos} present")
            extension = RtpExtension(profile, bytes(data[pos : pos + 4 * words]))
            pos += 4 * words
        end = n
        if has_padding:
            pad = data[-1]
            if pad == 0 or pos + pad > n:
                raise RtpError(f"bad padding: count {pad} with {n - pos} bytes after the header")
            end -= pad
        # 0x80 | PT: RTCP packet types 200..204 land on PT 72..76 here (rtcp-mux); not ours.
        payload_type = b1 & 0x7F
        if 72 <= payload_type <= 76:
            raise RtpError(f"payload type {payload_type} is RTCP (packet type {b1}), not RTP")
        return cls(
            payload_type=payload_type,
            sequence=sequence,
            timestamp=timestamp,
            ssrc=ssrc,
            payload=bytes(data[pos:end]),
            marker=bool(b1 & 0x80),
            csrc=tuple(csrc),
            extension=extension,
        )

    def serialize(self) -> bytes:
        b0 = (RTP_VERSION << 6) | (0x10 if self.extension else 0) | len(self.csrc)
        b1 = (0x80 if self.marker else 0) | self.payload_type
        parts = [_FIXED.pack(b0, b1, self.sequence, self.timestamp, self.ssrc)]
        if self.csrc:
            parts.append(struct.pack(f"!{len(self.csrc)}I", *self.csrc))
        if self.extension is not None:
            ext = self.extension
            parts.append(struct.pack("!HH", ext.profile, len(ext.data) // 4))
            parts.append(ext.data)
        parts.append(self.payload)
        return b"".join(parts)


def seq_diff(a: int, b: int) -> int:
    """Signed distance a - b between 16-bit sequence numbers, handling wraparound (-32768..32767)."""
    return ((a - b + 0x8000) & 0xFFFF) - 0x8000
