"""Digit strings on telephone audio: where digits get lost, offline Whisper vs our turn taker.

    .venv/bin/python benchmarks/digit_strings.py [--n 12] [--out benchmarks/results]

Callers say 10-digit phone numbers in three groups (3-3-4, a 350-700 ms pause between groups)
and 5-digit order numbers digit by digit (with a zero said "zero" or "oh"). Voices: flite
(slt, kal), espeak-ng and piper are the *tuning* voices; flite awb/rms, an espeak-ng variant
and hibari are *held out* (never looked at while tuning). Half of the utterances get 15 dB white
noise. Everything goes through the 8 kHz G.711 µ-law channel. Each utterance is decoded two ways:

- offline: the whole recording, one Whisper decode (what "decodes correctly offline" means);
- live: frame by frame through Silero VAD + our TurnTaker (endpointing, speculative ASR, early
  end of turn), with the turn settings the agent uses, optionally for an open digits slot.

Per path: digit strings exactly right, and how the live path split them into turns. Writes
digit_strings.json and .md with the machine it ran on.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ari_app.dialog.nlu.entities.numbers import extract_digits
from ari_app.media.transport import AudioFrame
from ari_app.speech.asr import Transcript, WhisperAsr
from ari_app.speech.audio import frames
from ari_app.speech.evaluation import telephone_channel
from ari_app.speech.expectation import Expectation
from ari_app.speech.recognition import TurnTaker
from ari_app.speech.turn import TurnSettings
from ari_app.speech.vad import SileroVad
from ari_app.testcaller import audio
from benchmarks.common.machine import machine_info

REPO = Path(__file__).resolve().parent.parent
WORDS = "zero one two three four five six seven eight nine".split()
TUNING = [("flite", "slt"), ("flite", "kal"), ("espeak-ng", None), ("piper", None)]
HELD_OUT = [("flite", "awb"), ("flite", "rms"), ("espeak-ng", "en-us+f3"), ("hibari", None)]


class Voices:
    def __init__(self) -> None:
        self._engines: dict[str, object] = {}

    def say(self, engine: str, voice: str | None, text: str) -> np.ndarray:
        if engine in ("flite", "espeak-ng"):
            return audio.synthesize(text, engine, voice=voice)
        if engine not in self._engines:
            from ari_app.speech.settings import TtsSettings
            from ari_app.speech.tts import make_tts

            self._engines[engine] = make_tts(TtsSettings(engine=engine, normalize_text=False))
        pcm = self._engines[engine].synthesize_sync(text)  # type: ignore[attr-defined]
        return np.frombuffer(pcm, dtype="<i2").copy()


def spoken(digits: str, rng: random.Random) -> str:
    return " ".join(("oh" if d == "0" and rng.random() < 0.5 else WORDS[int(d)]) for d in digits)


def utterances(n: int, rng: random.Random) -> list[tuple[str, list[str]]]:
    """(digits, groups as the caller says them)."""
    out = []
    for i in range(n):
        if i % 3 == 2:
            digits = "".join(rng.choice("0123456789") for _ in range(5))
            if "0" not in digits:
                digits = digits[:2] + "0" + digits[3:]
            out.append((digits, [digits]))
        else:
            digits = rng.choice("23456789") + "".join(rng.choice("0123456789") for _ in range(9))
            out.append((digits, [digits[:3], digits[3:6], digits[6:]]))
    return out


def render(voices: Voices, voice: tuple[str, str | None], groups: list[str], rng: random.Random,
           noisy: bool) -> bytes:  # fmt: skip
    parts: list[np.ndarray | float] = [0.4]
    for i, g in enumerate(groups):
        if i:
            parts.append(rng.uniform(0.35, 0.7))
        parts.append(voices.say(voice[0], voice[1], spoken(g, rng)))
    parts.append(3.0)  # the line goes on after the number: room for the longest end-of-turn wait
    pcm = audio.with_pauses(*parts)
    if noisy:
        pcm = audio.add_noise(pcm, 15, seed=rng.randrange(1 << 30))
    return telephone_channel(pcm.astype("<i2").tobytes())


async def live(
    asr: WhisperAsr, pcm: bytes, settings: TurnSettings, expect: Expectation | None
) -> list[Transcript]:
    taker = TurnTaker(asr, settings)
    taker.expect(expect)
    vad = SileroVad()

    async def stream():  # type: ignore[no-untyped-def]
        for i, f in enumerate(frames(pcm)):
            yield AudioFrame(f, received_at=i * 0.02, sequence=i)
            await asyncio.sleep(0)

    return [t.transcript async for t in taker.turns(stream(), vad) if hasattr(t, "transcript")]


def digits_of(text: str) -> str:
    ent = extract_digits(text)
    return str(ent.value) if ent else ""


def validator_pick(t: Transcript, want: int) -> str:
    """What the slot's validator takes: the first hypothesis with the right number of digits."""
    for text in (t.text, *t.alternatives):
        if len(digits_of(text)) == want:
            return digits_of(text)
    return digits_of(t.text)


async def run(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    voices = Voices()
    asr = WhisperAsr(args.model)
    base = TurnSettings()
    rows = []
    t0 = time.monotonic()
    for set_name, voice_list in (("tuning", TUNING), ("held_out", HELD_OUT)):
        for voice in voice_list:
            for k, (digits, groups) in enumerate(utterances(args.n, rng)):
                noisy = k % 2 == 1
                pcm = render(voices, voice, groups, rng, noisy)
                want = Expectation("digits", len(digits))
                offline = (await asr.transcribe(pcm)).text
                biased = await asr.transcribe(pcm, want)
                plain = [t.text for t in await live(asr, pcm, base, None)]
                slot = await live(asr, pcm, base, want)
                rows.append({
                    "set": set_name, "voice": f"{voice[0]}:{voice[1] or 'default'}", "noisy": noisy,
                    "digits": digits, "groups": len(groups),
                    "offline": offline, "offline_ok": digits_of(offline) == digits,
                    "offline_slot": [biased.text, *biased.alternatives],
                    "offline_slot_ok": validator_pick(biased, len(digits)) == digits,
                    "live_turns": plain, "live_first_ok": bool(plain) and digits_of(plain[0]) == digits,
                    "live_joined_ok": digits_of(" ".join(plain)) == digits,
                    "slot_turns": [[t.text, *t.alternatives] for t in slot],
                    "slot_first_ok": bool(slot) and validator_pick(slot[0], len(digits)) == digits,
                })  # fmt: skip
            print(f"  {set_name} {voice[0]}:{voice[1] or 'default'} done ({time.monotonic() - t0:.0f} s)",
                  flush=True)  # fmt: skip
    summary = {}
    for set_name in ("tuning", "held_out"):
        for noisy in (False, True):
            sel = [r for r in rows if r["set"] == set_name and r["noisy"] == noisy]
            if not sel:
                continue
            summary[f"{set_name}/{'noisy15dB' if noisy else 'clean'}"] = {
                "n": len(sel),
                **{k: round(sum(r[k] for r in sel) / len(sel), 3)
                   for k in ("offline_ok", "offline_slot_ok", "live_first_ok", "live_joined_ok",
                             "slot_first_ok")},
                "live_split": round(sum(len(r["live_turns"]) > 1 for r in sel) / len(sel), 3),
                "slot_split": round(sum(len(r["slot_turns"]) > 1 for r in sel) / len(sel), 3),
            }  # fmt: skip
    result = {"machine": machine_info(), "model": args.model, "turn_settings": base.model_dump(),
              "summary": summary, "rows": rows}  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"digit_strings_{args.model}.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["# Digit strings: offline Whisper vs the live turn taker", "",
             f"{result['machine'].get('date', '')} · {result['machine'].get('cpu_model', '')} · Whisper {args.model} · `benchmarks/digit_strings.py --n {args.n} --model {args.model}`", "",
             "Share of digit strings exactly right. offline: one decode of the whole recording; slot hint: "
             "with the digits expectation (Whisper prompt, 3 hypotheses, the validator takes the first "
             "with the right number of digits); live first: the first turn the agent got; joined: all "
             "turns of the utterance together; slot open: the turn taker told a digits slot is open "
             "(longer end-of-turn wait, no early end on a partial number, hint + validator); split: the "
             "utterance came out as more than one turn.", "",
             "| set | n | offline | offline, slot hint | live first | live joined | live, slot open | live split | slot split |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, s in summary.items():
        lines.append(f"| {name} | {s['n']} | {s['offline_ok']:.0%} | {s['offline_slot_ok']:.0%} | {s['live_first_ok']:.0%} | "
                     f"{s['live_joined_ok']:.0%} | {s['slot_first_ok']:.0%} | {s['live_split']:.0%} | "
                     f"{s['slot_split']:.0%} |")  # fmt: skip
    (args.out / f"digit_strings_{args.model}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=12, help="utterances per voice")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--model", default="tiny.en", choices=["tiny.en", "base"], help="Whisper model")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    return asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
