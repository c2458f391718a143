from __future__ import annotations

import struct

import pytest

from ari_app.media.dtmf import DtmfEvent, build_dtmf_packets
from ari_app.media.rtp import RtpError, RtpExtension, RtpPacket, seq_diff


def test_round_trip_plain_packet() -> None:
    p = RtpPacket(
        payload_type=0, sequence=65535, timestamp=0xFFFFFFFF, ssrc=0x12345678, payload=b"\xff" * 160
    )
    data = p.serialize()
    assert len(data) == 12 + 160
    assert data[:2] == b"\x80\x00"
    assert RtpPacket.parse(data) == p


def test_round_trip_with_marker_csrc_and_extension() -> None:
    p = RtpPacket(
        payload_type=8,
        sequence=7,
        timestamp=1234,
        ssrc=1,
        marker=True,
        csrc=(10, 20),
        extension=RtpExtension(0xBEDE, b"\x01\x02\x03\x04"),
        payload=b"abc",
    )
    data = p.serialize()
    assert data[0] == 0x80 | 0x10 | 2 and data[1] == 0x80 | 8
    assert RtpPacket.parse(data) == p


def test_padding_is_stripped() -> None:
    header = struct.pack("!BBHII", 0xA0, 0, 1, 2, 3)  # P bit set
    assert RtpPacket.parse(header + b"data" + b"\x00\x00\x03").payload == b"data"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "truncated: 0 bytes"),
        (b"\x80\x00\x00", "truncated: 3 bytes"),
        (struct.pack("!BBHII", 0x40, 0, 1, 2, 3), "RTP version 1"),
        (b"GET / HTTP/1.1\r\n\r\n", "RTP version 1"),
        (struct.pack("!BBHII", 0x83, 0, 1, 2, 3) + b"\x00" * 4, "announces 3 CSRCs"),
        (struct.pack("!BBHII", 0x90, 0, 1, 2, 3), "extension flag set"),
        (struct.pack("!BBHII", 0x90, 0, 1, 2, 3) + struct.pack("!HH", 0xBEDE, 5), "extension announces 20"),
        (struct.pack("!BBHII", 0xA0, 0, 1, 2, 3) + b"ab\x00", "bad padding: count 0"),
        (struct.pack("!BBHII", 0xA0, 0, 1, 2, 3) + b"\x09", "bad padding: count 9"),
        (struct.pack("!BBHII", 0x80, 200, 1, 2, 3), "is RTCP"),
    ],
)
def test_garbage_is_rejected_with_the_reason(data: bytes, reason: str) -> None:
    with pytest.raises(RtpError, match=reason):
        RtpPacket.parse(data)


def test_out_of_range_fields_are_refused() -> None:
    with pytest.raises(RtpError, match="sequence 65536"):
        RtpPacket(payload_type=0, sequence=65536, timestamp=0, ssrc=0)
    with pytest.raises(RtpError, match="payload_type 128"):
        RtpPacket(payload_type=128, sequence=0, timestamp=0, ssrc=0)


@pytest.mark.parametrize(
    ("a", "b", "diff"),
    [(5, 3, 2), (3, 5, -2), (0, 65535, 1), (65535, 0, -1), (10, 65530, 16), (0, 32768, -32768)],
)
def test_seq_diff_wraps(a: int, b: int, diff: int) -> None:
    assert seq_diff(a, b) == diff


def test_dtmf_packets_follow_rfc4733() -> None:
    packets = build_dtmf_packets("5", ssrc=9, sequence=65534, timestamp=800, duration_ms=100)
    events = [DtmfEvent.parse(p.payload) for p in packets]
    assert [p.marker for p in packets] == [True] + [False] * (len(packets) - 1)
    assert {p.timestamp for p in packets} == {800}
    assert [p.sequence for p in packets][:3] == [65534, 65535, 0]
    assert [e.duration for e in events] == [160, 320, 480, 640, 800, 800, 800]
    assert [e.end for e in events] == [False] * 4 + [True] * 3
    assert all(e.digit == "5" and e.volume == 10 for e in events)
    assert RtpPacket.parse(packets[0].serialize()) == packets[0]


def test_dtmf_bad_input() -> None:
    with pytest.raises(ValueError, match="'x' is not one of"):
        build_dtmf_packets("x", ssrc=1, sequence=0, timestamp=0)
    with pytest.raises(RtpError, match="needs 4"):
        DtmfEvent.parse(b"\x01")
    assert DtmfEvent.parse(bytes([11, 0x8A, 0, 160])) == DtmfEvent(11, True, 10, 160)
