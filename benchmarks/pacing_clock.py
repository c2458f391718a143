"""How evenly do our RTP senders pace 20 ms frames? (no Asterisk involved)

Runs N concurrent RtpTransport.play() streams in one asyncio loop (as N calls would), all sending
to a UDP sink in a separate process that timestamps every arrival with the system-wide monotonic
clock. Prints, per N: mean inter-arrival interval, p99 |interval - 20 ms|, worst interval, gaps
> 40 ms, pacer re-anchors, p99 distance of arrivals from the schedule their RTP timestamps imply
(the jitter a receiver sees), worst clock drift, and the sender process's CPU use.

    .venv/bin/python benchmarks/pacing_clock.py                 # N = 1 and 20, 10 s each
    .venv/bin/python benchmarks/pacing_clock.py --streams 50 --seconds 30 --format slin
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import socket
import struct
import time
from collections import defaultdict
from multiprocessing.connection import Connection

import numpy as np

from ari_app.media import PortPool, RtpTransport


def sink(port: int, seconds: float, ready: Connection, results: Connection) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind(("127.0.0.1", port))
    sock.settimeout(0.5)
    ready.send(True)
    arrivals: dict[int, list[tuple[float, int]]] = defaultdict(list)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            data = sock.recv(2048)
        except TimeoutError:
            continue
        now = time.monotonic()
        if len(data) >= 12:
            rtp_ts, ssrc = struct.unpack_from("!II", data, 4)
            arrivals[ssrc].append((now, rtp_ts))
    results.send(dict(arrivals))


async def send_streams(n: int, seconds: float, sink_port: int, fmt: str) -> tuple[float, float, int]:
    pool = PortPool("127.0.0.1", 42000, 42000 + 4 * n + 2)
    transports = [await RtpTransport.open(pool, fmt) for _ in range(n)]  # type: ignore[arg-type]
    for t in transports:
        t.set_remote("127.0.0.1", sink_port)
    pcm = np.zeros(int(8000 * seconds), dtype="<i2")
    pcm[::7] = 1000  # not silence, so encoding does real work
    cpu0, wall0 = time.process_time(), time.monotonic()
    await asyncio.gather(*(t.play(pcm.tobytes()) for t in transports))
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    reanchors = sum(t.stats.pacer_reanchors for t in transports)
    for t in transports:
        await t.close()
    assert pool.in_use == frozenset()
    return cpu, wall, reanchors


def run(n: int, seconds: float, fmt: str, sink_port: int) -> None:
    ctx = mp.get_context("spawn")
    ready_r, ready_w = ctx.Pipe(duplex=False)
    res_r, res_w = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=sink, args=(sink_port, seconds + 1.5, ready_w, res_w), daemon=True)
    proc.start()
    ready_r.recv()
    cpu, wall, reanchors = asyncio.run(send_streams(n, seconds, sink_port, fmt))
    arrivals = res_r.recv()
    proc.join(5)
    streams = [np.array(a, dtype=np.float64) for a in arrivals.values() if len(a) > 1]
    intervals = np.concatenate([np.diff(s[:, 0]) for s in streams]) * 1000
    # Arrival time against the RTP timestamp's ideal time: its spread is the jitter a receiver
    # sees, its slope the clock drift (RTP timestamps wrap only after 6 days; none here).
    offsets, drifts = [], []
    for s in streams:
        ideal = (s[:, 1] - s[0, 1]) / 8000
        off = s[:, 0] - s[0, 0] - ideal
        offsets.append(np.abs(off - np.median(off)) * 1000)
        drifts.append(np.polyfit(ideal, s[:, 0] - s[0, 0], 1)[0] - 1)
    jitter = np.concatenate(offsets)
    received = sum(len(s) for s in streams)
    expected = n * int(seconds / 0.020)
    dev = np.abs(intervals - 20.0)
    print(
        f"N={n:3d} {fmt:4s} {seconds:.0f}s: packets {received}/{expected}  "
        f"mean interval {intervals.mean():.3f} ms  p99 |dev| {np.percentile(dev, 99):.2f} ms  "
        f"max interval {intervals.max():.1f} ms  gaps>40ms {int((intervals > 40).sum())}  "
        f"reanchors {reanchors}  p99 |arrival - RTP-timestamp schedule| {np.percentile(jitter, 99):.2f} ms  "
        f"drift {1e6 * max(drifts, key=abs):+.0f} ppm  CPU {100 * cpu / wall:.1f}% of one core"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--streams", type=int, nargs="+", default=[1, 20], help="concurrent senders (N)")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--format", choices=["ulaw", "alaw", "slin"], default="ulaw")
    ap.add_argument("--sink-port", type=int, default=42998)
    args = ap.parse_args()
    print(f"pid {os.getpid()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    for n in args.streams:
        if n < 1:
            ap.error(f"--streams {n}: must be at least 1")
        run(n, args.seconds, args.format, args.sink_port)


if __name__ == "__main__":
    main()
