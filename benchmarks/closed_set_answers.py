"""Offered times and days said back: how often the closed-set pick recovers one the free decode missed.

    .venv/bin/python benchmarks/closed_set_answers.py [--out benchmarks/results]

Offered "10 AM or 3:30 PM" (or "9 AM, 11:30 AM or 2 PM"), or asked for a day, callers answer in
their own words ("Ten a.m. please", "half past three", "Next Thursday."). Each answer is rendered
by several TTS voices through the 8 kHz µ-law channel (clean and at 15 dB) and decoded as the live
agent does (speech.expectation.Expectation, "time" with the offered times or "date"), cut as the
live turn taker cuts a turn (caller_audio.as_turn: silence before and after; until the last run of
2026-12-07, the bare phrase). Where no hypothesis names a candidate, the candidates are scored
against the audio two ways:
- ``whole``: each candidate scored as all that was said, without the "half past" / "o'clock" /
  "next" / "this" forms (the closed set before 2026-12-07);
- ``start``: closed_set.pick as it is now (each candidate scored as how the answer starts, with
  those forms).
Right: the pick means what was said; wrong: another candidate (the confirmation then catches it);
forced: a pick from a turn that was no answer ("What times do you have?").
Voices flite slt/kal and espeak-ng's default were tuned on; six others held out (the times looked
at once before the "half past" forms were added; the days before the "next"/"this" forms).
Writes closed_set_answers.json and .md with the machine it ran on.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ari_app.speech import closed_set
from ari_app.speech.asr import WhisperAsr
from ari_app.speech.audio import pcm_to_float, resample
from ari_app.speech.expectation import Expectation
from ari_app.speech.whisper_short import FULL_FRAMES, _tight
from benchmarks.common.caller_audio import as_turn, on_the_line
from benchmarks.common.machine import heading, machine_info, write_results

REPO = Path(__file__).resolve().parent.parent
TWO = Expectation("time", None, ("10 AM", "3:30 PM"))
THREE = Expectation("time", None, ("9 AM", "11:30 AM", "2 PM"))
DAY = Expectation("date")
ANSWERS = {
    "tuning": [("Ten a.m. please", TWO, "10"), ("three thirty works for me", TWO, "3:30"),
               ("Let's do eleven thirty", THREE, "11:30"), ("two p.m. please", THREE, "2"),
               ("nine in the morning", THREE, "9"), ("ten o'clock", TWO, "10"),
               ("The three thirty one.", TWO, "3:30"), ("Eleven thirty is fine.", THREE, "11:30"),
               ("Next Wednesday.", DAY, "next Wednesday"), ("Friday, please.", DAY, "Friday"),
               ("This Tuesday.", DAY, "Tuesday"), ("next monday would be good", DAY, "next Monday")],
    "held_out": [("Ten a.m.", TWO, "10"), ("Three thirty please.", TWO, "3:30"),
                 ("I'll take the nine o'clock.", THREE, "9"), ("Two in the afternoon.", THREE, "2"),
                 ("Eleven thirty, please.", THREE, "11:30"), ("Ten in the morning, thanks.", TWO, "10"),
                 ("Nine a.m. would be great.", THREE, "9"), ("half past three", TWO, "3:30"),
                 ("Next Thursday.", DAY, "next Thursday"), ("Thursday.", DAY, "Thursday"),
                 ("This Friday works.", DAY, "Friday"), ("How about next Tuesday?", DAY, "next Tuesday")],
}  # fmt: skip
# Turns that are no answer at all: a pick from one is a wrong answer forced on the caller. The
# tuning ones set closed_set.MIN_TOKEN_LOGPROB; the held-out ones were written after.
OTHER_TURNS = {
    "tuning": [("Actually, make that Wednesday.", TWO), ("What times do you have?", TWO),
               ("Can I talk to someone?", THREE), ("I'm not sure.", TWO), ("Sorry, what was that?", THREE),
               ("Do you have anything later?", TWO), ("Hold on a second.", DAY), ("Can I talk to someone?", DAY),
               ("I'm not sure.", DAY)],
    "held_out": [("Um, let me check my calendar.", TWO), ("Could you repeat the times?", THREE),
                 ("Which doctor is that with?", TWO), ("Is there anything on Saturday?", THREE),
                 ("Why do I need to move it?", DAY), ("Let me think about it.", DAY)],
}  # fmt: skip
NEW_FORMS = ("o'clock", "half past", "Next ", "This ")  # candidate forms added on 2026-12-07
VOICES = {
    "tuning": [("flite", "slt"), ("flite", "kal"), ("espeak-ng", None)],
    "held_out": [("flite", "awb"), ("flite", "rms"), ("espeak-ng", "en-us+f3"), ("espeak-ng", "en-gb-scotland"),
                 ("espeak-ng", "en-029"), ("flite", "kal16")],
}  # fmt: skip
SNR_DB = 15.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = ap.parse_args()
    asr = WhisperAsr("tiny.en", threads=2)
    short = asr._short  # the live decoder: its model, tokenizer and encoder (no public seam needed elsewhere)
    assert short is not None
    rows: dict[str, dict[str, int]] = {}
    lines: list[str] = []
    for set_name, voices in VOICES.items():
        for noisy in (False, True):
            col = f"{set_name}{' 15dB' if noisy else ''}"
            row = rows.setdefault(col, {"answers": 0, "free_named": 0, "missed": 0, "whole_right": 0,
                                        "whole_wrong": 0, "start_right": 0, "start_wrong": 0, "other_turns": 0,
                                        "other_named": 0, "other_unnamed": 0, "whole_forced": 0, "start_forced": 0})  # fmt: skip
            for engine, voice in voices:
                turns = [*ANSWERS[set_name], *((t, e, None) for t, e in OTHER_TURNS[set_name])]
                for text, expect, said in turns:
                    wire = as_turn(on_the_line(text, engine, voice, SNR_DB if noisy else None))
                    tr = asr.transcribe_sync(wire, expect)
                    row["answers" if said else "other_turns"] += 1
                    heard = (tr.text, *(a for a in tr.alternatives if a != tr.picked))
                    if any(closed_set.names_one(h, expect.candidates) for h in heard):
                        row["free_named" if said else "other_named"] += 1
                        continue
                    row["missed" if said else "other_unnamed"] += 1
                    a16 = resample(pcm_to_float(wire), 8000, 16000)
                    feats = short.model.feature_extractor(a16)
                    n = min(feats.shape[-1], FULL_FRAMES)
                    enc = short._encode(feats, n, max(short.context_frames, _tight(n)))
                    old = [c for c in expect.candidates if not any(f in c for f in NEW_FORMS)]
                    whole = closed_set.best_clear(closed_set.score(short.model, short.tokenizer, enc, n, old))
                    start = closed_set.pick(short.model, short.tokenizer, enc, n, expect.candidates)
                    want = closed_set.same_value(said) if said else None
                    for name, got in (("whole", whole), ("start", start)):
                        if got is not None and want is None:
                            row[f"{name}_forced"] += 1
                        elif got is not None:
                            row[
                                f"{name}_{'right' if closed_set.same_value(got.text) == want else 'wrong'}"
                            ] += 1
                    lines.append(f"{col} {engine}:{voice} {text!r}: free {tr.text!r}; whole "
                                 f"{whole.text if whole else None}; start {start.text if start else None}")  # fmt: skip
            print(col, row, flush=True)
    result = {"machine": machine_info(), "rows": rows, "missed_turns": lines}
    md = heading(
        "Offered times and days said back: closed-set picks", result, "benchmarks/closed_set_answers.py"
    )
    md += ["| set | answers | named by a free hypothesis | missed | whole: right / wrong | start: right / wrong "
           "| other turns (not named) | whole: forced | start: forced |",
           "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for col, r in rows.items():
        md.append(f"| {col} | {r['answers']} | {r['free_named']} | {r['missed']} | {r['whole_right']} / "
                  f"{r['whole_wrong']} | {r['start_right']} / {r['start_wrong']} | {r['other_turns']} "
                  f"({r['other_unnamed']}) | {r['whole_forced']} | {r['start_forced']} |")  # fmt: skip
    md += [
        "",
        "Wrong: another candidate (read back at the confirmation). Forced: a turn that was no answer "
        '("What times do you have?") given a candidate. Missed turns are listed in the JSON.',
    ]
    write_results(args.out, "closed_set_answers", result, md)
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
