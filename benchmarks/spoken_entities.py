"""Entities from what ASR really writes: the held-out entity phrases spoken, not typed.

    .venv/bin/python benchmarks/spoken_entities.py [--out benchmarks/results]

Every phrase of benchmarks/data/nlu_heldout.yaml's ``entities`` section is rendered by several
TTS voices, sent through the 8 kHz µ-law channel (and once more with 15 dB white noise), and
transcribed by Whisper tiny.en the way the live agent does it: told what the open slot expects
(``speech.expectation.Expectation``: biasing prompt, several hypotheses for digits and times).
The slot's extractor reads the first hypothesis that parses, as the engine does. Accuracy per
entity type is reported next to the same extractor on the typed text, so the gap ASR opens is
visible. Voices flite slt/kal are tuning voices; flite awb/rms and espeak-ng en-us+f3 held out.
Writes spoken_entities.json and .md with the machine it ran on.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ari_app.dialog.nlu import build_understanding
from ari_app.speech.asr import WhisperAsr
from ari_app.speech.expectation import Expectation
from benchmarks.common.caller_audio import on_the_line
from benchmarks.common.machine import machine_info

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "benchmarks" / "data" / "nlu_heldout.yaml"
VOICES = {"tuning": [("flite", "slt"), ("flite", "kal")],
          "held_out": [("flite", "awb"), ("flite", "rms"), ("espeak-ng", "en-us+f3")]}  # fmt: skip
TYPES = ("date", "time", "date_of_birth", "digits", "yes_no", "amount")  # what our flows collect
SNR_DB = 15.0


def render(text: str, engine: str, voice: str | None, noisy: bool) -> bytes:
    return on_the_line(text, engine, voice, SNR_DB if noisy else None)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = ap.parse_args()
    data = yaml.safe_load(DATA.read_text())
    now = datetime.fromisoformat(data["now"])
    nlu = build_understanding()
    asr = WhisperAsr("tiny.en", threads=1)

    def read(texts: list[str], kind: str) -> object:
        for t in texts:
            got = nlu.extract(t, kind, now=now)
            if got is not None:
                return got.value
        return None

    rows: dict = {}
    misses: list[str] = []
    for kind in TYPES:
        cases = data["entities"][kind]
        typed = sum(read([t], kind) == want for t, want in cases)
        rows.setdefault(kind, {})["typed"] = [typed, len(cases)]
        for set_name, voices in VOICES.items():
            for noisy in (False, True):
                ok = n = 0
                for engine, voice in voices:
                    for text, want in cases:
                        expect = Expectation(kind, len(want) if kind == "digits" else None)
                        tr = asr.transcribe_sync(render(text, engine, voice, noisy), expect)
                        got = read([tr.text, *tr.alternatives], kind)
                        ok += got == want
                        n += 1
                        if got != want:
                            misses.append(f"{kind} {set_name} {engine}:{voice} {'noisy' if noisy else 'clean'}: "
                                          f"{text!r} -> ASR {tr.text!r} -> {got!r} (want {want!r})")  # fmt: skip
                rows[kind][f"{set_name}{' 15dB' if noisy else ''}"] = [ok, n]
        print(kind, rows[kind], flush=True)
    cols = ["typed", "tuning", "tuning 15dB", "held_out", "held_out 15dB"]
    totals = {c: [sum(rows[k][c][0] for k in TYPES), sum(rows[k][c][1] for k in TYPES)] for c in cols}
    result = {"machine": machine_info(), "now": data["now"], "rows": rows, "totals": totals, "misses": misses}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "spoken_entities.json").write_text(json.dumps(result, indent=2, default=str) + "\n")

    def pct(v: list[int]) -> str:
        return f"{v[0] / v[1]:.0%} ({v[0]}/{v[1]})" if v[1] else "-"

    md = ["# Entity phrases, spoken: TTS -> 8 kHz µ-law -> Whisper tiny.en (slot-aware) -> extractor", "",
          f"{result['machine'].get('date', '')} · {result['machine'].get('cpu_model', '')} · "
          "`benchmarks/spoken_entities.py`", "",
          "| type | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]  # fmt: skip
    md += [f"| {k} | " + " | ".join(pct(rows[k][c]) for c in cols) + " |" for k in TYPES]
    md += ["| **all** | " + " | ".join(f"**{pct(totals[c])}**" for c in cols) + " |", "",
           "Target: spoken entity phrases ≥ 97 %. Misses are listed in the JSON."]  # fmt: skip
    (args.out / "spoken_entities.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
