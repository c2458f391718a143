"""What one 20 ms caller frame costs on the listening path, per stage, in µs.

    .venv/bin/python benchmarks/frame_cost.py [--seconds 60] [--out benchmarks/results] [--name frame_cost]

50 frames a second arrive for every call whether anyone speaks or not, so this is the floor
under every call's CPU. Stages timed separately on the same frames, the way the listener runs
them: G.711 decode, VAD (as configured by default, and each engine alone), the turn taker's
endpointing, and the barge-in detector. Three inputs: digital silence, a line with comfort noise
(-65 dBFS), and human speech (the pocketsphinx telephone clips, end to end). No ASR runs: the
turn taker gets an ASR that returns at once, so endpointing is timed, not Whisper.
Writes NAME.json and .md with the machine it ran on.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ari_app.media.codecs import get_codec
from ari_app.media.constants import FRAME_BYTES, FRAME_SAMPLES
from ari_app.media.transport import AudioFrame
from ari_app.speech.asr import Transcript
from ari_app.speech.barge_in import BargeInDetector
from ari_app.speech.evaluation import pocketsphinx_clips
from ari_app.speech.recognition import TurnTaker
from ari_app.speech.settings import VadSettings
from ari_app.speech.turn import TurnSettings
from ari_app.speech.vad import make_vad
from benchmarks.common.machine import machine_info

REPO = Path(__file__).resolve().parent.parent


class InstantAsr:
    name = "instant"

    async def transcribe(
        self, pcm8k: bytes, expect: object = None, *, speculative: bool = False
    ) -> Transcript:
        return Transcript("hello there.", 0.9, len(pcm8k) // 16, self.name)


def inputs(seconds: float) -> dict[str, list[bytes]]:
    n = int(seconds * 50)
    rng = np.random.default_rng(0)
    noise = (rng.standard_normal(n * FRAME_SAMPLES) * 32768 * 10 ** (-65 / 20)).astype("<i2").tobytes()
    speech = b"".join(c.pcm8k for c in pocketsphinx_clips())
    speech = (speech * (1 + n * FRAME_BYTES // len(speech)))[: n * FRAME_BYTES]
    as_frames = lambda pcm: [pcm[i : i + FRAME_BYTES] for i in range(0, len(pcm), FRAME_BYTES)]  # noqa: E731
    return {
        "silence": [bytes(FRAME_BYTES)] * n,
        "comfort noise": as_frames(noise),
        "speech": as_frames(speech),
    }


def per_frame_us(fn, frames: list) -> float:
    t = time.perf_counter()
    for f in frames:
        fn(f)
    return (time.perf_counter() - t) / len(frames) * 1e6


async def stage_costs(frames: list[bytes]) -> dict[str, float]:
    ulaw = get_codec("ulaw")
    wire = [ulaw.encode(f) for f in frames]
    out = {"g711 decode": per_frame_us(ulaw.decode, wire)}
    for label, vs in (("vad (default)", VadSettings()), ("vad silero", VadSettings(engine="silero")),
                      ("vad webrtc", VadSettings(engine="webrtc"))):  # fmt: skip
        vad = make_vad(vs)
        out[label] = per_frame_us(vad.speech_probability, frames)
    vad = make_vad(VadSettings())
    probs = [vad.speech_probability(f) for f in frames]
    taker = TurnTaker(InstantAsr(), TurnSettings())
    t = time.perf_counter()
    for i, (f, p) in enumerate(zip(frames, probs, strict=True)):
        await taker.push(AudioFrame(pcm=f, received_at=i * 0.02, sequence=i), p)
    out["endpointing"] = (time.perf_counter() - t) / len(frames) * 1e6
    barge = BargeInDetector(TurnSettings())
    t = time.perf_counter()
    for i, p in enumerate(probs):
        barge.feed(p, i * 0.02)
    out["barge-in"] = (time.perf_counter() - t) / len(frames) * 1e6
    out["listening path (decode+vad+endpointing)"] = (
        out["g711 decode"] + out["vad (default)"] + out["endpointing"]
    )
    return {k: round(v, 1) for k, v in out.items()}


async def run(args: argparse.Namespace) -> int:
    rows = {}
    for name, frames in inputs(args.seconds).items():
        rows[name] = await stage_costs(frames)
        print(name, rows[name], flush=True)
    result = {"machine": machine_info(), "seconds_per_input": args.seconds, "us_per_frame": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    stages = list(next(iter(rows.values())))
    md = ["# µs per 20 ms caller frame, by stage", "",
          f"{result['machine'].get('date', '')} · {result['machine'].get('cpu_model', '')} · "
          f"{args.seconds:g} s of each input · `benchmarks/frame_cost.py`", "",
          "| stage | " + " | ".join(rows) + " |", "|---|" + "---|" * len(rows)]  # fmt: skip
    md += [f"| {s} | " + " | ".join(str(rows[i][s]) for i in rows) + " |" for s in stages]
    md += ["", "A call receives 50 frames/s: 100 µs/frame is 0.5 % of one core per call."]
    (args.out / f"{args.name}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--name", default="frame_cost")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    return asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
