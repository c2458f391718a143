"""Spoken requests routed with and without Whisper primed by what the agent helps with.

    .venv/bin/python benchmarks/greeting_prompt.py [--out benchmarks/results]

With no slot open the dialogue tells recognition what it can help with (``Listen("request")``);
Whisper reads that as the text said before the caller's turn ("I can help with rescheduling your
appointment, the refund, ..."), so a request's words ("appointment", "order", "refund") are its
likely words. This renders requests by several TTS voices through the 8 kHz µ-law channel (clean
and at 15 dB), decodes each twice (no prompt; the prompt the reference flows give) and routes the
transcript as the engine does (top intent of the reference flows at or above the confidence floor).
Right: routed to the flow the request is for; out-of-scope phrases are right when not routed.
Wrong flow: routed somewhere else (the costly error: the caller is taken down the wrong path).

Phrases: benchmarks/data/nlu_heldout.yaml's held-out requests for the reference flows and the
first ten out-of-scope phrases, plus the task-success personas' requests. Voices flite slt/kal and
espeak-ng's default tune nothing here but were looked at first ("tuning"); six others are held out.
Writes greeting_prompt.json and .md with the machine it ran on.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ari_app.dialog.engine import DialogEngine
from ari_app.dialog.loader import load_flows
from ari_app.dialog.nlu import build_understanding
from ari_app.speech.asr import WhisperAsr
from ari_app.speech.expectation import Expectation
from benchmarks.common.caller_audio import on_the_line
from benchmarks.common.machine import heading, machine_info, write_results

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "benchmarks" / "data" / "nlu_heldout.yaml"
# nlu_heldout's intent names -> the reference flows'
FLOW_OF = {"billing_refund": "billing_duplicate_charge", "reschedule_appointment": "reschedule_appointment",
           "order_status": "order_status", "faq_hours": "faq_opening_hours"}  # fmt: skip
PERSONA_REQUESTS = [
    ("I need to reschedule my appointment.", "reschedule_appointment"),
    ("Where's my parcel?", "order_status"),
    ("I'd like to move my appointment, please.", "reschedule_appointment"),
    ("I was charged twice last month and I need a refund.", "billing_duplicate_charge"),
    ("I want to check on my order.", "order_status"),
    ("I can't make my appointment, can we change it?", "reschedule_appointment"),
    ("Could I move my appointment to another day?", "reschedule_appointment"),
    ("I think I've been charged twice.", "billing_duplicate_charge"),
    ("I need a different appointment time.", "reschedule_appointment"),
]
VOICES = {
    "tuning": [("flite", "slt"), ("flite", "kal"), ("espeak-ng", None)],
    "held_out": [("flite", "awb"), ("flite", "rms"), ("espeak-ng", "en-us+f3"), ("espeak-ng", "en-gb"),
                 ("espeak-ng", "en-029"), ("flite", "kal16")],
}  # fmt: skip
SNR_DB = 15.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = ap.parse_args()
    data = yaml.safe_load(DATA.read_text())
    cases: list[tuple[str, str | None]] = [
        (t, FLOW_OF[k]) for k, v in data["heldout"].items() if k in FLOW_OF for t in v
    ]
    cases += [(t, None) for t in data["out_of_scope"][:10]] + PERSONA_REQUESTS
    flows = load_flows(sorted((REPO / "flows").glob("*.yaml")))
    nlu = build_understanding()
    engine = DialogEngine(flows, nlu)
    menu = Expectation("request", choices=engine.request_labels())
    asr = WhisperAsr("tiny.en", threads=2)
    floor = engine.settings.intent_confidence_min

    def route(text: str) -> str | None:
        parse = nlu.parse(text)
        ranked = [(str(i.name), float(i.score)) for i in parse.intents if i.name in flows.flows]
        return None if parse.out_of_scope or not ranked or ranked[0][1] < floor else ranked[0][0]

    rows: dict[str, dict[str, dict[str, int]]] = {}
    decode_ms: dict[str, list[float]] = {"none": [], "prompt": []}
    changed: list[str] = []
    total = sum(len(v) for v in VOICES.values()) * 2
    done = 0
    for set_name, voices in VOICES.items():
        for noisy in (False, True):
            col = f"{set_name}{' 15dB' if noisy else ''}"
            for engine_name, voice in voices:
                for text, want in cases:
                    wire = on_the_line(text, engine_name, voice, SNR_DB if noisy else None)
                    got = {}
                    for mode, expect in (("none", None), ("prompt", menu)):
                        t0 = time.perf_counter()
                        heard = asr.transcribe_sync(wire, expect).text
                        decode_ms[mode].append((time.perf_counter() - t0) * 1000)
                        got[mode] = (heard, route(heard))
                        cell = rows.setdefault(col, {}).setdefault(
                            mode, {"right": 0, "wrong_flow": 0, "n": 0}
                        )
                        cell["n"] += 1
                        cell["right"] += got[mode][1] == want
                        cell["wrong_flow"] += got[mode][1] is not None and got[mode][1] != want
                    if got["none"][1] != got["prompt"][1]:
                        changed.append(f"{col} {engine_name}:{voice}: {text!r} (want {want}): "
                                       f"{got['none'][0]!r} -> {got['none'][1]} | primed "
                                       f"{got['prompt'][0]!r} -> {got['prompt'][1]}")  # fmt: skip
                done += 1
                print(f"[{done}/{total}] {col} {engine_name}:{voice} {rows[col]}", flush=True)
    result = {
        "machine": machine_info(), "prompt": menu.whisper_prompt(), "rows": rows,
        "decode_ms_median": {k: round(statistics.median(v), 1) for k, v in decode_ms.items()},
        "changed": changed,
    }  # fmt: skip
    md = heading("Spoken requests: Whisper primed with what the agent helps with", result,
                 "benchmarks/greeting_prompt.py")  # fmt: skip
    md += [f"Prompt: \"{result['prompt']}\"", "",
           "| set | n | routed right (no prompt → primed) | routed to a wrong flow (no prompt → primed) |",
           "|---|---|---|---|"]  # fmt: skip
    for col, cell in rows.items():
        a, b = cell["none"], cell["prompt"]
        md.append(
            f"| {col} | {a['n']} | {a['right']} → {b['right']} | {a['wrong_flow']} → {b['wrong_flow']} |"
        )
    md += [
        "",
        f"Decode median (ms): {result['decode_ms_median']}. Turns whose route changed are listed in the JSON.",
    ]
    write_results(args.out, "greeting_prompt", result, md)
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
