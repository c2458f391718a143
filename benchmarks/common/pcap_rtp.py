"""Capture RTP on loopback with tcpdump and read it back: kernel timestamps, so what we measure
is what went over the wire, not when a busy Python process got round to reading it."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import struct
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class WirePacket:
    at: float  # capture time (s, epoch)
    src_port: int
    dst_port: int
    seq: int
    timestamp: int
    payload_type: int


@contextlib.asynccontextmanager
async def capture(path: Path, bpf: str) -> AsyncIterator[Path]:
    """tcpdump -i lo for the duration of the block (root needed)."""
    proc = await asyncio.create_subprocess_exec(
        "tcpdump", "-i", "lo", "-n", "-s", "96", "-U", "-w", str(path), bpf,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    await asyncio.sleep(1.0)  # tcpdump needs a moment before it captures
    try:
        yield path
    finally:
        await asyncio.sleep(0.3)
        proc.terminate()
        await proc.wait()


def read_rtp(path: Path) -> list[WirePacket]:
    """RTP packets of a classic pcap file (Ethernet or Linux cooked link types, IPv4/UDP)."""
    data = path.read_bytes()
    if len(data) < 24:
        return []
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    nano = magic in (0xA1B23C4D, 0x4D3CB2A1)
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    link_len = {1: 14, 113: 16, 276: 20}.get(linktype, 14)
    out, off = [], 24
    while off + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack(endian + "IIII", data[off : off + 16])
        pkt = data[off + 16 : off + 16 + incl]
        off += 16 + incl
        ip = pkt[link_len:]
        if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != 17:
            continue
        ihl = (ip[0] & 0x0F) * 4
        src, dst = struct.unpack("!HH", ip[ihl : ihl + 4])
        rtp = ip[ihl + 8 :]
        if len(rtp) < 12 or rtp[0] >> 6 != 2:
            continue
        seq, ts = struct.unpack("!HI", rtp[2:8])
        at = sec + frac / (1e9 if nano else 1e6)
        out.append(WirePacket(at, src, dst, seq, ts, rtp[1] & 0x7F))
    return out


def talkspurt_intervals(packets: list[WirePacket], payload_type: int = 0) -> list[float]:
    """Arrival intervals between consecutive packets of the same stream whose RTP timestamps are
    one 20 ms frame apart, i.e. inside a prompt (gaps between prompts are not counted)."""
    flows: dict[int, list[WirePacket]] = defaultdict(list)
    for p in packets:
        if p.payload_type == payload_type:
            flows[p.dst_port].append(p)
    intervals = []
    for pk in flows.values():
        pk.sort(key=lambda p: p.at)
        for a, b in itertools.pairwise(pk):
            if (b.timestamp - a.timestamp) & 0xFFFFFFFF == 160 and (b.seq - a.seq) & 0xFFFF == 1:
                intervals.append(b.at - a.at)
    return intervals
