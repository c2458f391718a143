"""How evenly do our RTP senders pace 20 ms frames? (no Asterisk involved)

Runs N concurrent RtpTransport.play() streams in one asyncio loop (as N calls would), all sending
to a UDP sink in a separate process that timestamps every arrival with the system-wide monotonic
clock. Prints, per N: mean inter-arrival interval, p99 |interval - 20 ms|, worst interval, gaps
> 40 ms, pacer re-anchors, p99 distance of arrivals from the schedule their RTP timestamps imply
(the jitter a receiver sees), worst clock drift, and the sender process's CPU use.

    .venv/bin/python benchmarks/pacing_clock.py                 # N = 1 and 20, 10 s each
    .venv/bin/python benchmarks/pacing_clock.py --streams 50 --seconds 30 --format slin
    .venv/bin/python benchmarks/pacing_clock.py --via-asterisk   # through the real stack's bridges

With --via-asterisk each stream is a mixing bridge of two ExternalMedia channels: one of our
transports plays, the other receives, and arrival times are taken by our own receive loop
(so they include Asterisk's forwarding and our loop's wake-up latency).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import os
import secrets
import socket
import struct
import time
from collections import defaultdict
from multiprocessing.connection import Connection

import aiohttp
import numpy as np

from ari_app.config import load_settings
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


def report(
    label: str, streams: list[np.ndarray], expected: int, cpu: float, wall: float, reanchors: int
) -> None:
    """Each stream is rows of (arrival time, ideal send time from the packet's own numbering)."""
    streams = [s for s in streams if len(s) > 1]
    if not streams:
        print(f"{label}: nothing arrived")
        return
    intervals = np.concatenate([np.diff(s[:, 0]) for s in streams]) * 1000
    # Arrival against the packet's ideal time: the spread is the jitter a receiver sees, the
    # slope is clock drift.
    offsets, drifts = [], []
    for s in streams:
        ideal = s[:, 1] - s[0, 1]
        off = s[:, 0] - s[0, 0] - ideal
        offsets.append(np.abs(off - np.median(off)) * 1000)
        drifts.append(np.polyfit(ideal, s[:, 0] - s[0, 0], 1)[0] - 1)
    jitter = np.concatenate(offsets)
    received = sum(len(s) for s in streams)
    dev = np.abs(intervals - 20.0)
    print(
        f"{label}: packets {received}/{expected}  "
        f"mean interval {intervals.mean():.3f} ms  p99 |dev| {np.percentile(dev, 99):.2f} ms  "
        f"max interval {intervals.max():.1f} ms  gaps>40ms {int((intervals > 40).sum())}  "
        f"reanchors {reanchors}  p99 |arrival - schedule| {np.percentile(jitter, 99):.2f} ms  "
        f"drift {1e6 * max(drifts, key=abs):+.0f} ppm  CPU {100 * cpu / wall:.1f}% of one core"
    )


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
    # Ideal time from the RTP timestamp (8 kHz; wraps only after 6 days, not here).
    streams = [np.array([(t, ts / 8000) for t, ts in a], dtype=np.float64) for a in arrivals.values()]
    report(
        f"N={n:3d} {fmt:4s} {seconds:.0f}s local sink",
        streams,
        n * int(seconds / 0.020),
        cpu,
        wall,
        reanchors,
    )


async def _via_asterisk(n: int, seconds: float, fmt: str) -> None:
    """N bridges, each joining two ExternalMedia channels: A plays, we time B's arrivals."""
    settings = load_settings()
    app = f"pacing-bench-{secrets.token_hex(4)}"
    auth = {
        "Authorization": aiohttp.encode_basic_auth(
            settings.ari.username, settings.ari.password.get_secret_value()
        )
    }
    pool = PortPool("127.0.0.1", 42000, 42000 + 4 * n + 2)
    started: dict[str, asyncio.Event] = defaultdict(asyncio.Event)
    channels: list[str] = []
    bridges: list[str] = []
    transports: list[RtpTransport] = []
    ended_early: list[str] = []  # another process (e.g. a test resetting Asterisk) hung them up
    ending = False
    async with aiohttp.ClientSession(headers=auth) as http:

        async def ari(method: str, path: str, **params: str) -> dict:
            async with http.request(method, settings.ari.url + path, params=params) as r:
                if r.status >= 300:
                    raise SystemExit(f"ARI {method} {path} -> {r.status} {await r.text()}")
                return await r.json(content_type=None) if r.content_length != 0 else {}

        async def pump(ws: aiohttp.ClientWebSocketResponse) -> None:
            async for msg in ws:
                event = msg.json() if msg.type == aiohttp.WSMsgType.TEXT else {}
                if event.get("type") == "StasisStart":
                    started[event["channel"]["id"]].set()
                elif event.get("type") == "StasisEnd" and not ending:
                    ended_early.append(event["channel"]["id"])

        async def external(t: RtpTransport) -> dict:
            ch = await ari(
                "POST",
                "/channels/externalMedia",
                app=app,
                external_host=f"127.0.0.1:{t.local_port}",
                format=fmt,
            )
            channels.append(ch["id"])
            await asyncio.wait_for(started[ch["id"]].wait(), 5)
            return ch

        ws = await http.ws_connect(settings.ari.ws_url, params={"app": app})
        pump_task = asyncio.create_task(pump(ws))
        try:
            pairs = []
            for _ in range(n):
                a, b = await RtpTransport.open(pool, fmt), await RtpTransport.open(pool, fmt)  # type: ignore[arg-type]
                transports += [a, b]
                ch_a, ch_b = await external(a), await external(b)
                bridge = (await ari("POST", "/bridges", type="mixing"))["id"]
                bridges.append(bridge)
                await ari("POST", f"/bridges/{bridge}/addChannel", channel=f"{ch_a['id']},{ch_b['id']}")
                cv = ch_a.get("channelvars", {})
                a.set_remote(cv["UNICASTRTP_LOCAL_ADDRESS"], int(cv["UNICASTRTP_LOCAL_PORT"]))
                pairs.append((a, b))

            async def arrivals(t: RtpTransport) -> np.ndarray:
                rows, first_seq = [], None
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(seconds + 1.5):
                        async for f in t.frames():
                            first_seq = f.sequence if first_seq is None else first_seq
                            rows.append((f.received_at, ((f.sequence - first_seq) & 0xFFFF) * 0.020))
                return np.array(rows, dtype=np.float64)

            receivers = [asyncio.create_task(arrivals(b)) for _, b in pairs]
            pcm = np.zeros(int(8000 * seconds), dtype="<i2")
            pcm[::7] = 1000
            cpu0, wall0 = time.process_time(), time.monotonic()
            await asyncio.gather(*(a.play(pcm.tobytes()) for a, _ in pairs))
            cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
            streams = await asyncio.gather(*receivers)
            reanchors = sum(a.stats.pacer_reanchors for a, _ in pairs)
            report(
                f"N={n:3d} {fmt:4s} {seconds:.0f}s via Asterisk",
                streams,
                n * int(seconds / 0.020),
                cpu,
                wall,
                reanchors,
            )
            if ended_early:
                print(f"  warning: {len(ended_early)} channels were hung up by someone else during the run")
        finally:
            ending = True
            for ch in channels:
                with contextlib.suppress(SystemExit):
                    await ari("DELETE", f"/channels/{ch}")
            for br in bridges:
                with contextlib.suppress(SystemExit):
                    await ari("DELETE", f"/bridges/{br}")
            for t in transports:
                await t.close()
            pump_task.cancel()
            await ws.close()
    assert pool.in_use == frozenset()


def run_via_asterisk(n: int, seconds: float, fmt: str) -> None:
    asyncio.run(_via_asterisk(n, seconds, fmt))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--streams", type=int, nargs="+", default=[1, 20], help="concurrent senders (N)")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--format", choices=["ulaw", "alaw", "slin"], default="ulaw")
    ap.add_argument("--sink-port", type=int, default=42998)
    ap.add_argument(
        "--via-asterisk",
        action="store_true",
        help="send through the real embedded Asterisk instead (needs `ari-app stack up`)",
    )
    args = ap.parse_args()
    print(f"pid {os.getpid()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    for n in args.streams:
        if n < 1:
            ap.error(f"--streams {n}: must be at least 1")
        if args.via_asterisk:
            run_via_asterisk(n, args.seconds, args.format)
        else:
            run(n, args.seconds, args.format, args.sink_port)


if __name__ == "__main__":
    main()
