"""Smart Turn v3.2 on telephone audio: does it tell a finished turn from a mid-sentence pause?

    .venv/bin/python benchmarks/smart_turn_eval.py [--out benchmarks/results]

Before it may end a caller's turn it must be right on 8 kHz µ-law speech. Cases, each ending in
200 ms of silence (what the model would hear at the moment we ask it):

- complete: whole sentences in several TTS voices, and the human pocketsphinx clips;
- paused: a sentence rendered with a comma ("what time do you, open tomorrow"), cut inside the
  comma pause: the voice is held, as a caller's is when they stop to think;
- prefix: the first half rendered alone (falls like a finished sentence: the hard case).

Voices flite slt/kal and espeak-ng are the tuning set; flite awb/rms, espeak-ng en-us+f3 and the
human clips are held out. Each case is judged resampled to 16 kHz (how we run it) and, for
comparison, fed 8 kHz as if it were 16 kHz. Also the text rule we use today (the speculative
transcript "looks complete") is not measured here: it needs ASR; see turn_latency's cut-offs.
Writes smart_turn_eval.json and .md with the machine it ran on.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ari_app.speech.evaluation import pocketsphinx_clips, telephone_channel
from ari_app.speech.smart_turn import SmartTurn
from ari_app.testcaller import audio
from benchmarks.common.machine import machine_info

REPO = Path(__file__).resolve().parent.parent
TUNING = [("flite", "slt"), ("flite", "kal"), ("espeak-ng", None)]
HELD_OUT = [("flite", "awb"), ("flite", "rms"), ("espeak-ng", "en-us+f3")]
SENTENCES = [
    "what time do you open tomorrow", "I need to reschedule my appointment", "where is my order",
    "I was charged twice last month", "can I talk to a real person", "next Wednesday would be good",
    "my number is five five five, one two three, four five six seven", "eleven thirty please",
    "yes please", "no thanks, that's all",
]  # fmt: skip
SPLITS = [
    ("what time do you", "open tomorrow"), ("I need to", "reschedule my appointment"),
    ("I was charged", "twice last month"), ("can I talk to", "a real person"),
    ("my number is", "five five five"), ("I'd like to move it to", "next Wednesday"),
    ("the order number is", "one oh four five two"), ("I think it was", "on the twelfth"),
]  # fmt: skip
TAIL_S = 0.2


def tel(pcm: np.ndarray) -> bytes:
    return telephone_channel(np.asarray(pcm, dtype="<i2").tobytes())


def with_tail(pcm: np.ndarray) -> np.ndarray:
    return audio.with_pauses(pcm, TAIL_S)


def cut_in_pause(pcm: np.ndarray) -> np.ndarray | None:
    """Audio up to TAIL_S into the longest quiet run in the middle half (the comma pause)."""
    frames = pcm[: len(pcm) // 160 * 160].reshape(-1, 160).astype(np.float64)
    quiet = 20 * np.log10(np.sqrt((frames**2).mean(axis=1)) / 32768 + 1e-9) < -45
    best, run_start, best_at = 0, None, None
    lo, hi = len(quiet) // 5, len(quiet) * 4 // 5
    for i in range(lo, hi):
        if quiet[i]:
            run_start = i if run_start is None else run_start
            if i - run_start + 1 > best:
                best, best_at = i - run_start + 1, run_start
        else:
            run_start = None
    if best_at is None or best < 5:  # no pause of 100 ms: this voice did not pause at the comma
        return None
    return with_tail(pcm[: best_at * 160])


def cases(voices: list[tuple[str, str | None]]) -> list[tuple[str, str, bytes]]:
    out = []
    for eng, v in voices:
        name = f"{eng}:{v or 'default'}"
        for s in SENTENCES:
            out.append(("complete", name, tel(with_tail(audio.synthesize(s, eng, voice=v)))))
        for a, b in SPLITS:
            cut = cut_in_pause(audio.synthesize(f"{a}, {b}", eng, voice=v))
            if cut is not None:
                out.append(("paused", name, tel(cut)))
            out.append(("prefix", name, tel(with_tail(audio.synthesize(a, eng, voice=v)))))
    return out


def judge(model: SmartTurn, items: list[tuple[str, str, bytes]]) -> dict:
    res: dict = {}
    ms: list[float] = []
    for kind, _voice, pcm in items:
        t = time.perf_counter()
        p16 = model.probability(pcm)
        ms.append((time.perf_counter() - t) * 1000)
        p8 = model.probability(pcm, rate=16000)  # 8 kHz fed as 16 kHz: what not to do
        want_complete = kind == "complete"
        r = res.setdefault(kind, {"n": 0, "right_16k": 0, "right_8k_as_16k": 0, "p": []})
        r["n"] += 1
        r["right_16k"] += (p16 > 0.5) == want_complete
        r["right_8k_as_16k"] += (p8 > 0.5) == want_complete
        r["p"].append(round(p16, 3))
    for r in res.values():
        r["accuracy_16k"] = round(r["right_16k"] / r["n"], 3)
        r["accuracy_8k_as_16k"] = round(r["right_8k_as_16k"] / r["n"], 3)
    return {
        "by_kind": res,
        "inference_ms_p50": round(statistics.median(ms), 1),
        "inference_ms_max": round(max(ms), 1),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = ap.parse_args()
    model = SmartTurn(threads=1)
    sets = {"tuning": cases(TUNING), "held_out": cases(HELD_OUT)}
    sets["held_out"] += [
        ("complete", "human", c.pcm8k + bytes(int(8000 * TAIL_S) * 2)) for c in pocketsphinx_clips()
    ]
    result = {"machine": machine_info(), "sets": {k: judge(model, v) for k, v in sets.items()}}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "smart_turn_eval.json").write_text(json.dumps(result, indent=2) + "\n")
    md = ["# Smart Turn v3.2 on 8 kHz µ-law turns", "",
          f"{result['machine'].get('date', '')} · {result['machine'].get('cpu_model', '')} · "
          "`benchmarks/smart_turn_eval.py`", "",
          "Right = complete turns judged complete (p > 0.5), paused/prefix turns judged incomplete.", "",
          "| set | kind | n | right (resampled to 16 kHz) | right (8 kHz fed as 16 kHz) |", "|---|---|---|---|---|"]  # fmt: skip
    for name, s in result["sets"].items():
        for kind, r in s["by_kind"].items():
            md.append(
                f"| {name} | {kind} | {r['n']} | {r['accuracy_16k']:.0%} | {r['accuracy_8k_as_16k']:.0%} |"
            )
    md += ["", "Inference per judgement (one thread): "
           + ", ".join(f"{k} p50 {s['inference_ms_p50']} ms (max {s['inference_ms_max']})" for k, s in result["sets"].items())]  # fmt: skip
    (args.out / "smart_turn_eval.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
