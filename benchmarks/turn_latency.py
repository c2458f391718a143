"""Turn latency on the wire: real SIP calls into the running agent, timed from the caller's side.

    . /tmp/hN.env; .venv/bin/python benchmarks/turn_latency.py [--levels 1,10,20] [--rounds-single 5]
        [--set end_of_turn_silence_ms=500 ...] [--out benchmarks/results]

The agent is a real ``Service`` (flows/faq.yaml: every question gets a spoken answer) in its own
process; the stack (Asterisk + Redis) must be up. Callers speak FAQ questions rendered with flite,
espeak-ng and piper, some with white noise at 15 dB SNR, some with a 300-700 ms pause in the
middle of the sentence. Per answer we take, on the caller's wire:

- latency: the caller's last voiced packet (of the clean speech; noise does not count) -> the
  first voiced agent packet after it;
- cut-off: the agent's voice arrives while the caller is still talking (during a pause);
- barge-in reaction: the caller starts talking over a long answer -> the agent's last voiced packet.

Also the agent's CPU-seconds per call-minute (getrusage in the agent process) and its own per-turn
metrics (asr_ms, decide_ms, first_audio_ms). Writes turn_latency.json and turn_latency.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ari_app.config import load_settings
from ari_app.testcaller import audio
from ari_app.testcaller.caller import CallReport, Silence, Step, Utterance, WaitForAgent, place_call
from benchmarks.common.agent_process import AgentProcess
from benchmarks.common.agent_wire import (
    agent_packets,
    agent_voiced,
    any_between,
    first_after,
    frame_sent_at,
    stream_stop_after,
    trim,
    voiced_frames,
)
from benchmarks.common.machine import machine_info
from benchmarks.common.wire_timing import percentile

ARRIVALS_PER_S = 5.0
REPO = Path(__file__).resolve().parent.parent
FLOWS = [REPO / "flows" / "faq.yaml"]
VOICES = ("flite", "espeak-ng", "piper")
QUESTIONS = [
    "what time do you open",
    "where are you located",
    "what are your opening hours",
    "are you open on saturday",
    "how do I find your office",
    "what time do you close",
]
SPLIT = [  # mid-sentence pauses
    ("what time do you", "open tomorrow"),
    ("where is", "your office"),
    ("are you open", "on saturday"),
    ("how late", "are you open"),
]
BARGE_PROMPT_Q = "where are you located"  # the answer is long (~5 s): talked over
BARGE_WITH = "what time do you open"
SNR_DB = 15.0


@dataclass
class Said:
    """One caller utterance: audio to play and where its clean speech ends (frame index)."""

    kind: str  # clean | noisy | paused
    voice: str
    text: str
    pcm: np.ndarray
    last_voiced_frame: int
    pause_s: float | None = None


# ---------------------------------------------------------------------------- rendering
async def render(text: str, voice: str, piper: Any) -> np.ndarray:
    if voice == "piper":
        pcm = np.frombuffer(b"".join([c async for c in piper.synthesize(text)]), dtype="<i2")
    else:
        pcm = await asyncio.to_thread(audio.synthesize, text, voice)
    return trim(np.asarray(pcm, dtype=np.int16))


async def build_corpus(seed: int = 7) -> list[Said]:
    from ari_app.speech.settings import TtsSettings
    from ari_app.speech.tts import make_tts

    piper = make_tts(TtsSettings(engine="piper"))
    rng = random.Random(seed)
    out: list[Said] = []
    for i, voice in enumerate(VOICES):
        for j, q in enumerate(QUESTIONS):
            clean = await render(q, voice, piper)
            last = int(voiced_frames(clean)[-1])
            if (i + j) % 2 == 0:
                out.append(Said("clean", voice, q, clean, last))
            else:  # noise continues 0.5 s past the words, as a noisy line would
                padded = audio.with_pauses(clean, 0.5)
                out.append(Said("noisy", voice, q, audio.add_noise(padded, SNR_DB, seed=i * 10 + j), last))
        for a, b in SPLIT:
            pause = round(rng.uniform(0.3, 0.7), 3)
            pcm = audio.with_pauses(await render(a, voice, piper), pause, await render(b, voice, piper))
            out.append(Said("paused", voice, f"{a} ... {b}", pcm, int(voiced_frames(pcm)[-1]), pause))
    return out


# ---------------------------------------------------------------------------- one call
@dataclass
class Turn:
    said: Said
    latency_s: float | None
    cut_off: bool
    busy: bool  # the agent was still talking when the caller started: not counted


def call_script(utts: list[Said]) -> list[Step]:
    steps: list[Step] = [WaitForAgent(timeout_s=20, quiet_s=1.5)]
    for u in utts:
        steps += [Utterance(pcm=u.pcm), WaitForAgent(timeout_s=20, quiet_s=1.5)]
    return steps


def analyse(report: CallReport, utts: list[Said]) -> list[Turn]:
    agent = agent_voiced(report)
    speech = [i for i in report.sent if i.kind == "speech" and not i.interrupted]
    turns = []
    for item, u in zip(speech, utts, strict=False):
        end = frame_sent_at(report, item, u.last_voiced_frame)
        if end is None:
            continue
        busy = any_between(agent, item.start - 0.3, item.start + 0.1)
        cut = not busy and any_between(agent, item.start + 0.1, end)
        first = first_after(agent, end)
        turns.append(Turn(u, None if first is None else first - end, cut, busy))
    return turns


def call_minutes(reports: list[CallReport]) -> float:
    total = 0.0
    for r in reports:
        s = r.sip
        if s.answered and (s.ended or s.bye_sent):
            total += (s.ended or s.bye_sent) - s.answered
    return total / 60


async def run_level(n: int, rounds: int, corpus: list[Said], target: str, port: int, rng: random.Random,
                    per_call: int) -> tuple[list[CallReport], list[Turn]]:  # fmt: skip
    reports: list[CallReport] = []
    turns: list[Turn] = []

    async def one(i: int, utts: list[Said]) -> tuple[CallReport, list[Said]]:
        await asyncio.sleep(i / ARRIVALS_PER_S)  # calls arrive 5 a second, as in the issue's probe
        r = await place_call(target, call_script(utts), listen_s=0.5, sip_port=port, invite_timeout=30)
        return r, utts

    for _ in range(rounds):
        jobs = [one(i, rng.sample(corpus, per_call)) for i in range(n)]
        for r, utts in await asyncio.gather(*jobs):
            reports.append(r)
            turns += analyse(r, utts)
    return reports, turns


# ---------------------------------------------------------------------------- barge-in
async def barge_calls(n: int, corpus: list[Said], target: str, port: int) -> list[float | None]:
    """Ask for the address, talk over the answer 1.8 s after asking; reaction per call (None: the
    agent was not talking when the caller started, so nothing to measure)."""
    q = next(s for s in corpus if s.text == BARGE_PROMPT_Q and s.kind == "clean")
    over = next(s for s in corpus if s.text == BARGE_WITH and s.kind == "clean")
    out: list[float | None] = []
    for _ in range(n):
        script: list[Step] = [WaitForAgent(timeout_s=20, quiet_s=1.5), Utterance(pcm=q.pcm),
                              Silence(1.8), Utterance(pcm=over.pcm), WaitForAgent(timeout_s=20, quiet_s=1.5)]  # fmt: skip
        r = await place_call(target, script, listen_s=0.3, sip_port=port)
        stream = agent_packets(r)
        speech = [i for i in r.sent if i.kind == "speech"]
        start = frame_sent_at(r, speech[1], int(voiced_frames(over.pcm)[0])) if len(speech) > 1 else None
        if start is None or not any_between(stream, start - 0.1, start):
            out.append(None)
            continue
        # The prompt's own pauses are sent as silence; our transport sends nothing once stopped.
        stop = stream_stop_after(r, start)
        out.append(None if stop is None else stop - start)
    return out


# ---------------------------------------------------------------------------- reporting
def dist(values: list[float], scale: float = 1000.0) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    return {"n": len(values), "p50": round(percentile(values, 50) * scale, 1),
            "p95": round(percentile(values, 95) * scale, 1), "max": round(max(values) * scale, 1)}  # fmt: skip


def metric_summary(metrics: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("asr_ms", "decide_ms", "first_audio_ms", "barge_in_ms"):
        vals = [float(m[key]) for m in metrics if m.get(key) is not None]
        out[key] = dist(vals, scale=1.0)
    hits = [m["speculative_hit"] for m in metrics if m.get("speculative_hit") is not None]
    out["speculative_hit_rate"] = round(sum(hits) / len(hits), 3) if hits else None
    out["turns"] = len(metrics)
    return out


def stage_split(before: dict[str, float], after: dict[str, float], minutes: float) -> dict[str, float]:
    """CPU-seconds per call-minute by stage (ari_app.stage_cpu), between two agent snapshots."""
    if not minutes:
        return {}
    out = {k: round((after.get(k, 0.0) - before.get(k, 0.0)) / minutes, 4) for k in after}
    named = sum(v for k, v in out.items() if k != "process")
    out["unattributed"] = round(max(0.0, out.get("process", 0.0) - named), 4)
    return out


def level_summary(n: int, reports: list[CallReport], turns: list[Turn], cpu_s: float,
                  metrics: list[dict[str, Any]], stages: tuple[dict, dict]) -> dict[str, Any]:  # fmt: skip
    counted = [t for t in turns if not t.busy]
    lat = [t.latency_s for t in counted if not t.cut_off and t.latency_s is not None]
    by_kind = {
        k: dist(
            [t.latency_s for t in counted if t.said.kind == k and not t.cut_off and t.latency_s is not None]
        )
        for k in ("clean", "noisy", "paused")
    }
    by_voice = {
        v: dist(
            [t.latency_s for t in counted if t.said.voice == v and not t.cut_off and t.latency_s is not None]
        )
        for v in VOICES
    }
    paused = [t for t in counted if t.said.kind == "paused"]
    minutes = call_minutes(reports)
    return {
        "concurrent": n,
        "calls": len(reports),
        "turns": len(turns),
        "turns_agent_still_talking": len(turns) - len(counted),
        "no_reply": sum(1 for t in counted if t.latency_s is None),
        "latency_ms": dist(lat),
        "latency_by_kind_ms": by_kind,
        "latency_by_voice_ms": by_voice,
        "cut_offs": sum(t.cut_off for t in counted),
        "cut_off_rate": round(sum(t.cut_off for t in counted) / len(counted), 3) if counted else None,
        "cut_offs_paused": f"{sum(t.cut_off for t in paused)}/{len(paused)}",
        "cut_off_pauses_s": sorted(t.said.pause_s for t in paused if t.cut_off and t.said.pause_s),
        "call_minutes": round(minutes, 2),
        "agent_cpu_s": round(cpu_s, 2),
        "cpu_s_per_call_minute": round(cpu_s / minutes, 2) if minutes else None,
        "cpu_s_per_call_minute_by_stage": stage_split(*stages, minutes),
        "agent_metrics": metric_summary(metrics),
    }


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        "# Turn latency on the wire",
        "",
        f"{m['date']} · {m['nproc']} CPUs · {m['cpu_model']} · settings: `{json.dumps(result['turn_settings'])}`",
        "",
        "Caller side: last voiced caller packet (clean speech) → first voiced agent packet. "
        "Cut-off: agent voice arrives while the caller is still talking (mid-sentence pause).",
        "",
        "| calls | turns | p50 ms | p95 ms | max ms | cut-offs | no reply | CPU-s / call-min | "
        "asr_ms p50/p95 | decide_ms p50/p95 | first_audio_ms p50/p95 | spec. hit |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for lv in result["levels"]:
        lat, am = lv["latency_ms"], lv["agent_metrics"]

        def pp(d: dict[str, Any]) -> str:
            return f"{d.get('p50', '-')}/{d.get('p95', '-')}"

        lines.append(
            f"| {lv['concurrent']} | {lv['turns']} | {lat.get('p50', '-')} | {lat.get('p95', '-')} | "
            f"{lat.get('max', '-')} | {lv['cut_offs']} ({lv['cut_off_rate']}) | {lv['no_reply']} | "
            f"{lv['cpu_s_per_call_minute']} | {pp(am['asr_ms'])} | {pp(am['decide_ms'])} | "
            f"{pp(am['first_audio_ms'])} | {am['speculative_hit_rate']} |"
        )
    lines += ["", "Latency by caller audio (ms, p50/p95, n):", ""]
    for lv in result["levels"]:
        parts = [f"{k} {d.get('p50', '-')}/{d.get('p95', '-')} (n={d['n']})" for k, d in
                 {**lv["latency_by_kind_ms"], **lv["latency_by_voice_ms"]}.items()]  # fmt: skip
        lines.append(f"- {lv['concurrent']} calls: " + ", ".join(parts))
    stage_names = sorted({k for lv in result["levels"] for k in lv.get("cpu_s_per_call_minute_by_stage", {})})
    if stage_names:
        lines += ["", "CPU-seconds per call-minute by stage (ari_app/stage_cpu.py; `process` is the whole agent):", "",
                  "| stage | " + " | ".join(f"{lv['concurrent']} calls" for lv in result["levels"]) + " |",
                  "|---|" + "---|" * len(result["levels"])]  # fmt: skip
        for st in stage_names:
            lines.append(f"| {st} | " + " | ".join(
                str(lv.get("cpu_s_per_call_minute_by_stage", {}).get(st, "-")) for lv in result["levels"]) + " |")  # fmt: skip
    b = result["barge_in"]
    lines += [
        "",
        f"Barge-in reaction on the wire (caller's first voiced packet → the agent's packet stream stops): "
        f"{b['reaction_ms']} over {b['calls']} calls ({b['not_measured']} not measured: agent not talking yet).",
        "",
        "Targets: 1 call p50 ≤ 400 / p95 ≤ 650 ms; 10 calls p50 ≤ 500 / p95 ≤ 800 ms; 20 calls p50 ≤ 600 / "
        "p95 ≤ 1000 ms with no unanswered turn and ≤ 2.0 CPU-s per call-minute; cut-offs ≤ 3 %; barge-in p95 ≤ 150 ms.",
    ]
    for verdict in result["verdicts"]:
        lines.append(f"- {verdict}")
    return "\n".join(lines) + "\n"


TARGETS = {1: (400, 650), 10: (500, 800), 20: (600, 1000)}  # calls -> (p50, p95) ms


def verdicts(levels: list[dict[str, Any]], barge: dict[str, Any]) -> list[str]:
    out = []

    def mark(ok: bool) -> str:
        return "met" if ok else "NOT met"

    for lv in levels:
        n, lat = lv["concurrent"], lv["latency_ms"]
        if n in TARGETS and lat.get("n"):
            p50, p95 = TARGETS[n]
            out.append(f"{n} calls p50 {lat['p50']} ms ≤ {p50}: {mark(lat['p50'] <= p50)}; "
                       f"p95 {lat['p95']} ms ≤ {p95}: {mark(lat['p95'] <= p95)}")  # fmt: skip
        if n == 20:
            out.append(f"20 calls unanswered turns {lv['no_reply']} = 0: {mark(lv['no_reply'] == 0)}")
            cpu = lv["cpu_s_per_call_minute"]
            if cpu is not None:
                out.append(f"20 calls CPU {cpu} s per call-minute ≤ 2.0: {mark(cpu <= 2.0)}")
        rate = lv["cut_off_rate"]
        if rate is not None:
            out.append(f"{n} calls cut-off rate {rate:.1%} ≤ 3 %: {mark(rate <= 0.03)}")
    if barge["reaction_ms"].get("n"):
        p95 = barge["reaction_ms"]["p95"]
        out.append(f"barge-in reaction p95 {p95} ms ≤ 150: {mark(p95 <= 150)}")
    return out


def print_table(result: dict[str, Any]) -> None:
    print(f"{'calls':>5} {'turns':>5} {'p50':>7} {'p95':>7} {'max':>7} {'cut-off':>8} {'noreply':>7} "
          f"{'cpu/min':>7} {'asr p50':>7} {'dec p50':>7} {'1st p50':>7}")  # fmt: skip
    for lv in result["levels"]:
        lat, am = lv["latency_ms"], lv["agent_metrics"]
        print(
            f"{lv['concurrent']:>5} {lv['turns']:>5} {lat.get('p50', '-'):>7} {lat.get('p95', '-'):>7} "
            f"{lat.get('max', '-'):>7} {lv['cut_off_rate']!s:>8} {lv['no_reply']:>7} "
            f"{lv['cpu_s_per_call_minute']!s:>7} {am['asr_ms'].get('p50', '-')!s:>7} "
            f"{am['decide_ms'].get('p50', '-')!s:>7} {am['first_audio_ms'].get('p50', '-')!s:>7}"
        )
    print(f"barge-in reaction: {result['barge_in']['reaction_ms']}")
    for v in result["verdicts"]:
        print(f"  {v}")


# ---------------------------------------------------------------------------- main
async def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    env = {f"ARI_APP_SPEECH__TURN__{k.upper()}": v for k, v in (s.split("=", 1) for s in args.set)}
    env |= dict(s.split("=", 1) for s in args.env)
    turn = {
        **settings.speech.turn.model_dump(),
        **{k.lower(): v for k, v in (s.split("=", 1) for s in args.set)},
    }
    print("rendering caller audio (flite, espeak-ng, piper) ...", flush=True)
    corpus = await build_corpus()
    rng = random.Random(11)
    target, port = settings.stack.extension, settings.stack.sip_port
    levels_out = []
    async with AgentProcess(FLOWS, env=env, repo=args.agent_repo) as agent:
        for n in args.levels:
            rounds = args.rounds_single if n == 1 else 1
            before = await agent.stats()
            print(f"{n} concurrent call(s) x {rounds} round(s) ...", flush=True)
            reports, turns = await run_level(n, rounds, corpus, target, port, rng, args.per_call)
            await asyncio.sleep(0.5)
            after = await agent.stats()
            metrics = after["turn_metrics"][len(before["turn_metrics"]) :]
            stages = (before.get("stage_cpu_s", {}), after.get("stage_cpu_s", {}))
            levels_out.append(
                level_summary(n, reports, turns, after["cpu_s"] - before["cpu_s"], metrics, stages)
            )
        print(f"barge-in: {args.barge_calls} calls ...", flush=True)
        reactions = await barge_calls(args.barge_calls, corpus, target, port)
    measured = [r for r in reactions if r is not None]
    barge = {
        "calls": len(reactions),
        "not_measured": len(reactions) - len(measured),
        "reaction_ms": dist(measured),
    }
    result = {
        "machine": machine_info(),
        "turn_settings": turn,
        "flows": [str(p.relative_to(REPO)) for p in FLOWS],
        "levels": levels_out,
        "barge_in": barge,
        "verdicts": verdicts(levels_out, barge),
    }
    print_table(result)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / f"{args.name}.md").write_text(markdown(result))
    print(f"wrote {args.out / args.name}.json and .md")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--levels", type=lambda s: [int(x) for x in s.split(",")], default=[1, 10, 20])
    ap.add_argument("--rounds-single", type=int, default=5, help="sequential calls at concurrency 1")
    ap.add_argument("--per-call", type=int, default=4, help="utterances per call")
    ap.add_argument("--barge-calls", type=int, default=5)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a speech.turn setting for the agent, e.g. end_of_turn_silence_ms=500")  # fmt: skip
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                    help="an environment setting for the agent, e.g. ARI_APP_SPEECH__ASR__DECODE_WORKERS=1")  # fmt: skip
    ap.add_argument("--agent-repo", type=Path, default=None,
                    help="run the agent from another checkout (e.g. a git worktree of an older commit)")  # fmt: skip
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    ap.add_argument("--name", default="turn_latency")
    args = ap.parse_args()
    try:
        return asyncio.run(run(args))
    except (RuntimeError, OSError, audio.AudioError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
