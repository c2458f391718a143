"""How to spend the cores on Whisper: decode workers x CTranslate2 threads per decode.

    .venv/bin/python benchmarks/asr_workers.py [--rounds 2] [--out benchmarks/results]

Decodes the human telephone clips (pocketsphinx-testdata, 8 kHz µ-law) through the speech
scheduler for each layout, first one at a time (the latency one caller sees), then ``burst``
decodes submitted together (what 20 callers who stop at once look like). Reports median and p95
decode latency and decodes per second, and the WER at each context size, so the default
(ari_app.speech.asr.default_decode_workers, AsrSettings.whisper_threads) is chosen by numbers.
Writes asr_workers.json and .md with the machine it ran on.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ari_app.speech.asr import WhisperAsr
from ari_app.speech.evaluation import corpus_wer, pocketsphinx_clips
from ari_app.speech.scheduler import DecodeScheduler
from benchmarks.common.machine import machine_info

REPO = Path(__file__).resolve().parent.parent
LAYOUTS = [(1, 1), (1, 2), (2, 1)]  # (workers, threads per decode) on 2 cores


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


async def measure(workers: int, threads: int, clips: list, rounds: int, burst: int, context_s: float) -> dict:
    asr = WhisperAsr("tiny.en", threads=threads, context_s=context_s, scheduler=DecodeScheduler(workers))
    single: list[float] = []
    pairs: list[tuple[str, str]] = []
    for _ in range(rounds):
        for clip in clips:
            t = time.perf_counter()
            tr = await asr.transcribe(clip.pcm8k)
            single.append((time.perf_counter() - t) * 1000)
            pairs.append((clip.text, tr.text))

    async def timed(pcm: bytes) -> float:
        t = time.perf_counter()
        await asr.transcribe(pcm)
        return (time.perf_counter() - t) * 1000

    loaded: list[float] = []
    t0 = time.perf_counter()
    n = 0
    for i in range(0, len(clips) * rounds, burst):
        batch = [clips[(i + k) % len(clips)].pcm8k for k in range(burst)]
        loaded += await asyncio.gather(*(timed(p) for p in batch))
        n += len(batch)
    wall = time.perf_counter() - t0
    return {
        "workers": workers, "threads": threads, "context_s": context_s,
        "single_p50_ms": round(statistics.median(single)), "single_p95_ms": round(pct(single, 0.95)),
        f"burst{burst}_p50_ms": round(statistics.median(loaded)), f"burst{burst}_p95_ms": round(pct(loaded, 0.95)),
        "decodes_per_s": round(n / wall, 2), "wer": round(corpus_wer(pairs), 3),
    }  # fmt: skip


async def run(args: argparse.Namespace) -> int:
    clips = pocketsphinx_clips()
    print(f"{len(clips)} telephone clips, {args.rounds} rounds, bursts of {args.burst}", flush=True)
    rows = []
    for workers, threads in LAYOUTS:
        for ctx in (10.0,) if (workers, threads) != (2, 1) else (10.0, 30.0):
            row = await measure(workers, threads, clips, args.rounds, args.burst, ctx)
            rows.append(row)
            print(row, flush=True)
    result = {"machine": machine_info(), "clips": len(clips), "rounds": args.rounds, "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "asr_workers.json").write_text(json.dumps(result, indent=2) + "\n")
    b = args.burst
    md = ["# Whisper tiny.en: decode workers x threads per decode", "",
          f"{result['machine'].get('date', '')} · {result['machine'].get('cpu_model', '')} · "
          f"{len(clips)} human telephone clips x {args.rounds} · `benchmarks/asr_workers.py`", "",
          f"| workers | threads | context s | one at a time p50 / p95 ms | {b} at once p50 / p95 ms | decodes/s | WER |",
          "|---|---|---|---|---|---|---|"]  # fmt: skip
    md += [f"| {r['workers']} | {r['threads']} | {r['context_s']:g} | {r['single_p50_ms']} / {r['single_p95_ms']} | "
           f"{r[f'burst{b}_p50_ms']} / {r[f'burst{b}_p95_ms']} | {r['decodes_per_s']} | {r['wer']} |" for r in rows]  # fmt: skip
    (args.out / "asr_workers.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--burst", type=int, default=6)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    return asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
