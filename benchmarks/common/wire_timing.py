"""On-the-wire timing of real test calls, and the summary helpers other benchmarks can reuse.

    .venv/bin/python benchmarks/common/wire_timing.py [--calls 5] [--concurrent 3] [--target 1001]

Places calls with the built-in test caller (real SIP + RTP into the embedded Asterisk; the stack
must be up) and prints: INVITE -> 100 / 200 times, 'last voiced caller packet -> first voiced
packet back' (for 1001 Echo this is Asterisk's media round trip), our send pacing (mean and worst
interval between packets) and packet counts. Use ``summarise()`` / ``percentile()`` in other
benchmarks that collect ``CallReport``s.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
from collections.abc import Sequence

import numpy as np

from ari_app.testcaller import audio
from ari_app.testcaller.caller import CallReport, Utterance, place_call
from ari_app.testcaller.sip import SipError


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q)) if values else float("nan")


def ms(values: Sequence[float]) -> str:
    if not values:
        return "n/a"
    return (
        f"p50 {percentile(values, 50) * 1000:7.2f} ms  p95 {percentile(values, 95) * 1000:7.2f} ms  "
        f"max {max(values) * 1000:7.2f} ms  (n={len(values)})"
    )


def summarise(reports: Sequence[CallReport]) -> dict[str, list[float]]:
    """Per-metric lists in seconds, over all calls."""
    out: dict[str, list[float]] = {
        "100 Trying": [],
        "200 OK": [],
        "response latency": [],
        "send interval": [],
    }
    for r in reports:
        s = r.sip
        if s.invite_sent and s.first_response:
            out["100 Trying"].append(s.first_response - s.invite_sent)
        if s.invite_sent and s.answered:
            out["200 OK"].append(s.answered - s.invite_sent)
        out["response latency"] += [x.latency_s for x in r.responses() if x.latency_s is not None]
        sent = [p.sent_at for p in r.rtp.sent]
        out["send interval"] += list(np.diff(sent)) if len(sent) > 1 else []
    return out


async def run(target: str, calls: int, concurrent: int) -> int:
    speech = audio.synthesize("I need to reschedule my appointment")
    script = [Utterance(pcm=speech)]
    reports: list[CallReport] = []
    for _ in range(calls):
        try:
            batch = await asyncio.gather(
                *(place_call(target, script, listen_s=0.5) for _ in range(concurrent))
            )
        except SipError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        reports += batch
    stats = summarise(reports)
    print(
        f"{len(reports)} calls to {target} ({concurrent} at a time), {len(speech) / 8000:.2f} s utterance each"
    )
    for name, values in stats.items():
        print(f"  {name:17s} {ms(values)}")
    intervals = stats["send interval"]
    if intervals:
        print(f"  send interval mean {statistics.fmean(intervals) * 1000:.3f} ms")
    print(
        f"  packets sent {sum(r.packets_sent for r in reports)}, received {sum(r.packets_received for r in reports)}"
    )
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--target", default="1001")
    ap.add_argument("--calls", type=int, default=5, help="rounds of calls")
    ap.add_argument("--concurrent", type=int, default=1, help="calls at the same time per round")
    args = ap.parse_args()
    return asyncio.run(run(args.target, args.calls, args.concurrent))


if __name__ == "__main__":
    sys.exit(main())
