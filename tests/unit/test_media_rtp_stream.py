from __future__ import annotations

from ari_app.media.rtp_stream import OutboundRtpStream


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
