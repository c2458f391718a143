"""Write Ethernet/IPv4/UDP pcap files of RTP for sipp's ``play_pcap_audio``: G.711 µ-law frames
of 160 bytes every 20 ms, and RFC 4733 DTMF events (8 updates + 3 end packets)."""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ari_app.media.codecs.g711 import ulaw_encode
from ari_app.media.dtmf import build_dtmf_packets
from ari_app.media.rtp import RtpPacket
from ari_app.testcaller.rtp_peer import DTMF_DURATION_MS, DTMF_END_PACKETS, FRAME_S, FRAME_SAMPLES
from ari_app.testcaller.sdp import PT_PCMU, PT_TELEPHONE_EVENT

# sipp rewrites addresses and ports when it replays; these only need to be well-formed.
SRC = ("127.0.0.1", 6000)
DST = ("127.0.0.1", 6002)


SSRC = 0x1234ABCD


def _ip_checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def udp_frame(payload: bytes, src: tuple[str, int] = SRC, dst: tuple[str, int] = DST) -> bytes:
    """Ethernet + IPv4 + UDP around one datagram (UDP checksum 0 = not computed, allowed in IPv4)."""
    udp = struct.pack("!HHHH", src[1], dst[1], 8 + len(payload), 0) + payload
    ip_src = bytes(int(x) for x in src[0].split("."))
    ip_dst = bytes(int(x) for x in dst[0].split("."))
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0, ip_src, ip_dst)
    ip = ip[:10] + struct.pack("!H", _ip_checksum(ip)) + ip[12:]
    eth = b"\x00\x00\x00\x00\x00\x02" + b"\x00\x00\x00\x00\x00\x01" + b"\x08\x00"
    return eth + ip + udp


def write_pcap(path: str | Path, datagrams: Iterable[tuple[float, bytes]]) -> Path:
    """``datagrams``: (seconds from start, UDP payload). Link type 1 (Ethernet), µs timestamps."""
    p = Path(path)
    with p.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for t, payload in datagrams:
            frame = udp_frame(payload)
            sec, usec = int(t), round((t - int(t)) * 1e6)
            f.write(struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame)
    return p


def ulaw_rtp(pcm: np.ndarray, start_s: float = 0.0, seq: int = 1, ts: int = 0) -> list[tuple[float, bytes]]:
    pcm = np.asarray(pcm, dtype="<i2")
    pcm = np.concatenate([pcm, np.zeros((-pcm.size) % FRAME_SAMPLES, dtype="<i2")])
    return [
        (
            start_s + i * FRAME_S,
            RtpPacket(
                PT_PCMU,
                (seq + i) & 0xFFFF,
                ts + i * FRAME_SAMPLES,
                SSRC,
                ulaw_encode(frame.tobytes()),
                marker=i == 0,
            ).serialize(),
        )
        for i, frame in enumerate(pcm.reshape(-1, FRAME_SAMPLES))
    ]


def dtmf_rtp(digit: str, start_s: float = 0.0, seq: int = 1, ts: int = 0) -> list[tuple[float, bytes]]:
    """One digit: 8 updates then 3 end packets, 20 ms apart (raises ValueError for a non-digit)."""
    packets = build_dtmf_packets(
        digit,
        ssrc=SSRC,
        sequence=seq,
        timestamp=ts,
        payload_type=PT_TELEPHONE_EVENT,
        duration_ms=DTMF_DURATION_MS,
        end_repeats=DTMF_END_PACKETS,
    )
    return [(start_s + i * FRAME_S, p.serialize()) for i, p in enumerate(packets)]


def write_speech_pcap(path: str | Path, pcm: np.ndarray) -> Path:
    return write_pcap(path, ulaw_rtp(pcm))


def write_dtmf_pcap(path: str | Path, digit: str) -> Path:
    return write_pcap(path, dtmf_rtp(digit))


def read_pcap_udp(path: str | Path) -> list[tuple[float, bytes]]:
    """The inverse of write_pcap, for tests: (time, UDP payload) of each Ethernet/IPv4/UDP frame."""
    data = Path(path).read_bytes()
    magic, *_rest, linktype = struct.unpack("<IHHiIII", data[:24])
    if magic != 0xA1B2C3D4 or linktype != 1:
        raise ValueError(f"{path} is not a little-endian Ethernet pcap")
    out, pos = [], 24
    while pos + 16 <= len(data):
        sec, usec, incl, _orig = struct.unpack("<IIII", data[pos : pos + 16])
        frame = data[pos + 16 : pos + 16 + incl]
        out.append((sec + usec / 1e6, frame[14 + 20 + 8 :]))
        pos += 16 + incl
    return out
