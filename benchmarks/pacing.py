"""Outbound pacing on real calls, as the caller hears it: inter-arrival intervals of the agent's
RTP packets during its prompts, with 1 and 20 concurrent calls.

    . /tmp/hN.env; .venv/bin/python benchmarks/pacing.py [--levels 1,20] [--out benchmarks/results]

The agent is a real ``Service`` (flows/faq.yaml) in its own process; the stack must be up. Each
caller hears the greeting, asks "where are you located" and hears the long answer (+ "anything
else?"). A prompt is a run of voiced agent packets (quiet gaps up to 300 ms bridged) lasting at
least 1 s; every packet received inside it counts. Per level: mean interval, p99 |interval - 20 ms|,
worst interval, gaps > 40 ms, and the caller's own send-loop gaps (if the caller process stalls,
its arrival stamps are late too, so a caller-side stall shows up there).
(``pacing_clock.py`` measures our sender alone into a local sink.) Writes pacing.json / pacing.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ari_app.config import load_settings
from ari_app.testcaller import audio
from ari_app.testcaller.caller import CallReport, Utterance, WaitForAgent, place_call
from benchmarks.common.agent_process import AgentProcess
from benchmarks.common.machine import machine_info
from benchmarks.common.pcap_rtp import capture, read_rtp, talkspurt_intervals
from benchmarks.common.wire_timing import percentile

REPO = Path(__file__).resolve().parent.parent
FLOWS = [REPO / "flows" / "faq.yaml"]
QUESTION = "where are you located"
MIN_PROMPT_S = 1.0


def prompt_packets(report: CallReport) -> list[list[tuple[float, int]]]:
    """(arrival, RTP timestamp) of every audio packet inside each prompt the caller heard."""
    spans = [(a, b) for a, b in report.rtp.voiced_spans(max_gap_s=0.3) if b - a >= MIN_PROMPT_S]
    pkts = [(p.arrival, p.timestamp) for p in report.rtp.received if p.pcm is not None]
    return [[x for x in pkts if a <= x[0] <= b] for a, b in spans]


def stats(prompts: list[list[tuple[float, int]]]) -> dict[str, Any]:
    intervals: list[float] = []
    for pk in prompts:
        if len(pk) < 2:
            continue
        intervals += list(np.diff([p[0] for p in pk]))
    if not intervals:
        return {"prompts": len(prompts), "intervals": 0}
    dev = [abs(x - 0.020) for x in intervals]
    return {
        "prompts": len(prompts),
        "prompt_seconds": round(sum(p[-1][0] - p[0][0] for p in prompts if p), 1),
        "intervals": len(intervals),
        "mean_ms": round(statistics.fmean(intervals) * 1000, 3),
        "p99_abs_dev_ms": round(percentile(dev, 99) * 1000, 2),
        "max_interval_ms": round(max(intervals) * 1000, 2),
        "gaps_over_40ms": sum(1 for x in intervals if x > 0.040),
    }


def wire_stats(intervals: list[float]) -> dict[str, Any]:
    if not intervals:
        return {"wire_intervals": 0}
    dev = [abs(x - 0.020) for x in intervals]
    return {
        "wire_intervals": len(intervals),
        "wire_mean_ms": round(statistics.fmean(intervals) * 1000, 3),
        "wire_p99_abs_dev_ms": round(percentile(dev, 99) * 1000, 2),
        "wire_max_interval_ms": round(max(intervals) * 1000, 2),
        "wire_gaps_over_40ms": sum(1 for x in intervals if x > 0.040),
    }


async def run_level(n: int, speech: np.ndarray, target: str, port: int) -> tuple[dict[str, Any], int]:
    script = [
        WaitForAgent(timeout_s=30, quiet_s=1.0),
        Utterance(pcm=speech),
        WaitForAgent(timeout_s=30, quiet_s=1.5),
    ]

    async def one(i: int) -> CallReport:
        await asyncio.sleep(i * 0.1)
        return await place_call(target, script, listen_s=0.3, sip_port=port, invite_timeout=30)

    st, md = load_settings().stack, load_settings().media
    # Asterisk -> callers (not -> our agent's ExternalMedia ports), timestamped by the kernel.
    bpf = (f"udp and src portrange {st.asterisk_rtp_min}-{st.asterisk_rtp_max} "
           f"and not dst portrange {md.rtp_port_min}-{md.rtp_port_max}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        async with capture(Path(tmp) / "rtp.pcap", bpf) as pcap:
            reports = await asyncio.gather(*(one(i) for i in range(n)))
        wire = wire_stats(talkspurt_intervals(read_rtp(pcap)))
    prompts = [p for r in reports for p in prompt_packets(r)]
    # If the caller's own 20 ms send loop stalls, arrival stamps are late too: the caller is overloaded.
    send_gaps = sum(int((np.diff([p.sent_at for p in r.rtp.sent]) > 0.040).sum()) for r in reports)
    lv = {"concurrent": n, "calls": n, **wire, **stats(prompts), "caller_send_gaps_over_40ms": send_gaps}
    return lv, sum(r.packets_received for r in reports)


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        "# Outbound pacing on the wire (caller side)",
        "",
        f"{m['date']} · {m['nproc']} CPUs · {m['cpu_model']}",
        "",
        "Inter-arrival intervals of the agent's RTP packets inside its prompts (greeting and a long FAQ "
        "answer) on their way from Asterisk to the callers. **Wire**: tcpdump on loopback (kernel "
        "timestamps; consecutive frames of one talkspurt). **Caller**: arrival times in the Python test "
        "caller, which also shows the caller process's own stalls.",
        "",
        "| calls | wire intervals | wire mean ms | wire p99 abs dev ms | wire max ms | wire gaps > 40 ms |",
        "|---|---|---|---|---|---|",
    ]
    for lv in result["levels"]:
        lines.append(
            f"| {lv['concurrent']} | {lv.get('wire_intervals', '-')} | {lv.get('wire_mean_ms', '-')} | "
            f"{lv.get('wire_p99_abs_dev_ms', '-')} | {lv.get('wire_max_interval_ms', '-')} | "
            f"{lv.get('wire_gaps_over_40ms', '-')} |"
        )
    lines += [
        "",
        "| calls | prompts | prompt s | caller intervals | mean ms | p99 abs dev ms | max ms | gaps > 40 ms | "
        "caller's own send gaps > 40 ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for lv in result["levels"]:
        lines.append(
            f"| {lv['concurrent']} | {lv['prompts']} | {lv.get('prompt_seconds', '-')} | {lv['intervals']} | "
            f"{lv.get('mean_ms', '-')} | {lv.get('p99_abs_dev_ms', '-')} | {lv.get('max_interval_ms', '-')} | "
            f"{lv.get('gaps_over_40ms', '-')} | {lv['caller_send_gaps_over_40ms']} |"
        )
    return "\n".join(lines) + "\n"


async def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    speech = audio.synthesize(QUESTION, "flite")
    levels = []
    async with AgentProcess(FLOWS) as agent:
        for n in args.levels:
            print(f"{n} concurrent call(s) ...", flush=True)
            before = await agent.stats()
            lv, _ = await run_level(n, speech, settings.stack.extension, settings.stack.sip_port)
            after = await agent.stats()
            lv["agent_cpu_s"] = round(after["cpu_s"] - before["cpu_s"], 2)
            levels.append(lv)
            print("  " + json.dumps(lv))
    result = {"machine": machine_info(), "levels": levels}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "pacing.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "pacing.md").write_text(markdown(result))
    print(markdown(result))
    print(f"wrote {args.out / 'pacing.json'} and .md")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--levels", type=lambda s: [int(x) for x in s.split(",")], default=[1, 20])
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = ap.parse_args()
    try:
        return asyncio.run(run(args))
    except (RuntimeError, OSError, audio.AudioError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
