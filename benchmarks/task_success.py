"""Task success on real SIP calls: scripted callers through every reference flow, judged by what
really changed in the backend (or the right hand-over), not by what the agent said it did.

    .venv/bin/python benchmarks/task_success.py [--only NAME] [--out benchmarks/results]

The stack (Asterisk + Redis) must be up (`ari-app stack up`). The agent runs as a real Service in
its own process with the shipped flows; the demo backend runs here, fresh for every call, so a
check reads its database after the call. Each caller is a Persona (ari_app/testcaller/persona.py):
it hears the agent through Whisper, works out what it was asked and answers that, with another
phrasing when asked again, so a call measures the agent rather than the script's order: happy paths, over-informative and out-of-order
answers, corrections while times are offered, digressions, key presses, 15 dB noise, silence and
wrong credentials. Voices: flite slt/kal and espeak-ng are the tuning voices; flite awb/rms and
an espeak-ng variant, with phrasings written after the engine work, are held out.

Per call: success, caller turns, agent reprompts and whether a reprompt was said twice in a row.
Writes task_success.json and .md with the machine it ran on.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ari_app.config import load_settings
from ari_app.demo_backend.app import DB, create_app
from ari_app.speech.asr import WhisperAsr
from ari_app.testcaller.caller import Reply, place_call
from ari_app.testcaller.persona import Persona
from benchmarks.common.agent_process import AgentProcess
from benchmarks.common.machine import heading, machine_info, write_results

REPO = Path(__file__).resolve().parent.parent
SECRET = "task-success-bench-secret"
REPROMPT_MARKS = ("sorry", "i didn't", "i got ", "please say", "please pick", "please tell", "try once more",
                  "isn't available", "still to come", "keypad", "are you still there")  # fmt: skip
Check = Callable[[web.Application, list[str]], bool]


ORIGINAL_DAY = web.AppKey("original_day", str)


def booked(at: str) -> Check:
    """The appointment really moved to a new day at ``at``. (The seeded appointment is at 10:00:
    until 2026-12-07 this checked the time only, so two calls that never booked, expecting
    10:00, were counted as successes; corrected figures are in the results notes.)"""

    def check(app: web.Application, said: list[str]) -> bool:
        row = app[DB].execute("SELECT day, time FROM appointments WHERE customer_id=1").fetchone()
        return row is not None and row[1] == at and row[0] != app[ORIGINAL_DAY]

    return check


def refunded(app: web.Application, said: list[str]) -> bool:
    return (
        app[DB].execute("SELECT COUNT(*) FROM charges WHERE customer_id=1 AND refunded=1").fetchone()[0] == 1
    )


def said(*needles: str) -> Check:
    def check(app: web.Application, lines: list[str]) -> bool:
        text = " ".join(lines).lower()
        return all(n.lower() in text for n in needles)

    return check


def nothing_changed_and(inner: Check) -> Check:
    def check(app: web.Application, lines: list[str]) -> bool:
        untouched = app[DB].execute("SELECT COUNT(*) FROM charges WHERE refunded=1").fetchone()[0] == 0
        return untouched and inner(app, lines)

    return check


@dataclass(frozen=True)
class Scenario:
    name: str
    set: str  # tuning | held_out
    voice: tuple[str, str | None]
    answers: dict[str, tuple[str | None, ...]]  # topic -> lines in order ("#123" keys, None silence)
    check: Check
    snr_db: float | None = None


S = Scenario
SLT, KAL, ESPEAK = ("flite", "slt"), ("flite", "kal"), ("espeak-ng", None)
AWB, RMS, F3 = ("flite", "awb"), ("flite", "rms"), ("espeak-ng", "en-us+f3")
KAL16, GB, CARIB = ("flite", "kal16"), ("espeak-ng", "en-gb"), ("espeak-ng", "en-029")
SCOT, RP, M3 = ("espeak-ng", "en-gb-scotland"), ("espeak-ng", "en-gb-x-rp"), ("espeak-ng", "en-us+m3")
PHONE = ("five five five, one two three, four five six seven",)
KEYS = ("#5551234567#",)  # what a caller offered the keypad for the phone number presses
DOB = ("April twelfth, nineteen eighty five",)
SCENARIOS = [
    # --- tuning voices and phrasings
    S("reschedule_happy", "tuning", SLT,
      {"request": ("I need to reschedule my appointment.",), "menu": ("#1",), "phone": PHONE, "keypad": KEYS, "birth": DOB,
       "day": ("next Wednesday",), "time": ("eleven thirty",), "confirm": ("yes",), "closing": ("no thanks",)},
      booked("11:30")),
    S("reschedule_keys", "tuning", KAL,
      {"request": ("I want to move my appointment.",), "menu": ("#1",), "phone": ("#5551234567#",), "birth": ("April 12th 1985",),
       "day": ("next Monday",), "time": ("#2",), "confirm": ("yes",), "closing": ("no",)},
      booked("11:30")),
    S("order_status", "tuning", SLT,
      {"request": ("Where is my order?",), "menu": ("#3",), "order": ("one oh four five two",), "keypad": ("#10452#",), "closing": ("no thanks",)},
      said("shipped")),
    S("order_keys", "tuning", ESPEAK,
      {"request": ("I want to check my order status",), "menu": ("#3",), "order": ("#10452",), "closing": ("no",)},
      said("shipped")),
    S("refund_happy", "tuning", KAL,
      {"request": ("I was charged twice last month and I need a refund.",), "menu": ("#2",), "phone": PHONE, "keypad": KEYS,
       "birth": ("April twelfth nineteen eighty five",), "confirm": ("yes please",), "closing": ("no thanks",)},
      refunded),
    S("faq_digression", "tuning", SLT,
      {"request": ("I need to reschedule my appointment.",), "menu": ("#1",),
       "phone": ("What are your opening hours?", *PHONE), "birth": DOB, "day": ("next Wednesday",),
       "time": ("two pm",), "confirm": ("yes",), "closing": ("no",)},
      booked("14:00")),
    S("noisy_order", "tuning", KAL,
      {"request": ("Where is my order?",), "menu": ("#3",), "order": ("one oh four five two",), "keypad": ("#10452#",), "closing": ("no",)},
      said("shipped"), snr_db=15),
    S("silence", "tuning", SLT, {"*": (None,)}, said("connect you")),
    # --- held out: voices and phrasings not used while tuning
    S("overinformative", "held_out", AWB,
      {"request": ("Hi, this is Dana. My number is five five five, one two three, four five six seven, "
                   "and I'd like to move my appointment.",), "menu": ("#1",),
       "phone": ("It's five five five, one two three, four five six seven.",), "keypad": KEYS,
       "birth": ("I was born on April twelfth, nineteen eighty five.",), "day": ("Wednesday would be good.",),
       "time": ("The eleven thirty one.",), "confirm": ("Yes please.",), "closing": ("That's all.",)},
      booked("11:30")),
    S("correction_on_offer", "held_out", RMS,
      {"request": ("Can I change the day of my appointment?",), "menu": ("#1",), "phone": PHONE, "keypad": KEYS,
       "birth": ("It's April twelfth, nineteen eighty five.",), "day": ("next Tuesday", "Wednesday"),
       "time": ("Actually, make that Wednesday.", "Eleven thirty please."), "confirm": ("Yes.",),
       "closing": ("No, thank you.",)},
      booked("11:30")),
    S("not_on_offer", "held_out", F3,
      {"request": ("I have to reschedule my visit.", "I want to change my appointment time."), "menu": ("#1",), "phone": ("five five five one two three four five six seven",), "keypad": KEYS,
       "birth": ("April twelfth nineteen eighty five",), "day": ("next Wednesday",),
       "time": ("Can I do four instead?", "Two o'clock then."), "confirm": ("Yes.",), "closing": ("No.",)},
      booked("14:00")),
    S("refund_out_of_order", "held_out", AWB,
      {"request": ("Hi, I got billed twice for the same thing, my number is five five five one two three four "
                   "five six seven.",), "menu": ("#2",),
       "phone": ("five five five one two three four five six seven",), "keypad": KEYS,
       "birth": ("April twelfth nineteen eighty five",), "confirm": ("Yes, refund it.",),
       "closing": ("No, that's everything.",)},
      refunded),
    S("wrong_credentials", "held_out", RMS,
      {"request": ("I need a refund for a double charge.", "The refund, please."), "menu": ("#2",), "phone": ("five five five, zero zero zero, one one one one",), "keypad": ("#5550001111#",),
       "birth": ("March third, nineteen ninety",), "confirm": ("yes",), "closing": ("nothing else",)},
      nothing_changed_and(said("couldn't find an account"))),
    S("noisy_reschedule", "held_out", AWB,
      {"request": ("I'd like to reschedule my appointment please.", "Rescheduling, please."), "menu": ("#1",), "phone": ("#5551234567#",), "birth": DOB,
       "day": ("next Wednesday",), "time": ("the second one",), "confirm": ("yes",), "closing": ("no",)},
      booked("11:30"), snr_db=15),
    S("ask_for_person", "held_out", F3, {"request": ("Can I talk to a real person?",)}, said("connect you")),
    S("order_with_fillers", "held_out", RMS,
      {"request": ("Um, I'm calling about an order I placed.",), "menu": ("#3",), "order": ("one oh, um, four five two",), "keypad": ("#10452#",),
       "closing": ("No that's it.",)},
      said("shipped")),
    # --- held out, second set: voices (flite kal16, espeak-ng en-gb / en-029 / us-mbrola-free
    # variants) and phrasings written on 2026-12-03 after the closed-set and keyed-date work,
    # and never used to tune anything; reported on their own
    S("day_only_answers", "held_out_2", KAL16,
      {"request": ("Could I move my appointment to another day?",), "menu": ("#1",),
       "phone": ("five five five one two three four five six seven",), "keypad": KEYS,
       "birth": ("The twelfth of April, nineteen eighty five.",), "day": ("Thursday.", "Thursday please."),
       "time": ("Ten, please.",), "confirm": ("That's right.",), "closing": ("No, that's it, thanks.",)},
      booked("10:00")),
    S("refund_british", "held_out_2", GB,
      {"request": ("I think I've been charged twice.",), "menu": ("#2",), "phone": ("#5551234567#",),
       "birth": ("April the twelfth, nineteen eighty five.",), "confirm": ("Yes, go ahead.",),
       "closing": ("No, ta.",)},
      refunded),
    S("order_zero_spoken", "held_out_2", CARIB,
      {"request": ("I'm checking on a delivery.",), "menu": ("#3",), "order": ("One zero four five two.",),
       "keypad": ("#10452#",), "closing": ("Nope.",)},
      said("shipped")),
    S("noisy_friday_first", "held_out_2", KAL16,
      {"request": ("Reschedule, please.", "I need to reschedule."), "menu": ("#1",), "phone": ("#5551234567#",),
       "birth": ("April twelfth nineteen eighty five",), "day": ("Friday.", "This Friday."),
       "time": ("The first one.",), "confirm": ("Yes.",), "closing": ("No.",)},
      booked("09:00"), snr_db=15),
    S("person_midway", "held_out_2", GB,
      {"request": ("Where's my parcel?",), "menu": ("#3",), "order": ("Actually, can I speak to someone?",)},
      said("connect you")),
    S("change_time_on_confirm", "held_out_2", CARIB,
      {"request": ("I need a different appointment time.",), "menu": ("#1",), "phone": ("#5551234567#",),
       "birth": ("April twelfth, nineteen eighty five.",), "day": ("next Tuesday",),
       "time": ("Ten a.m.",), "confirm": ("No, make it three thirty.", "Yes."), "closing": ("No thank you.",)},
      booked("15:30")),
    # --- held out, third set: voices (espeak-ng en-gb-scotland, en-gb-x-rp, en-us+m3) and
    # phrasings written on 2026-12-07 before this set was ever run; reported on their own
    S("reschedule_push_back", "held_out_3", SCOT,
      {"request": ("I'd like to push my appointment back a few days.",), "menu": ("#1",),
       "phone": ("five five five, one two three, four five six seven.",), "keypad": KEYS,
       "birth": ("April the twelfth, nineteen eighty-five.",), "day": ("Next Thursday.",),
       "time": ("Ten a.m. please.",), "confirm": ("Sounds good.",), "closing": ("Nothing else.",)},
      booked("10:00")),
    S("order_digit_by_digit", "held_out_3", RP,
      {"request": ("Has my package been sent yet?",), "menu": ("#3",), "order": ("It's one, zero, four, five, two.",),
       "keypad": ("#10452#",), "closing": ("No, cheers.",)},
      said("shipped")),
    S("refund_birth_date_first", "held_out_3", M3,
      {"request": ("Hello, my date of birth is April twelfth nineteen eighty five and I want my money back "
                   "for a duplicate charge.",), "menu": ("#2",),
       "phone": ("five five five one two three four five six seven",), "keypad": KEYS, "birth": DOB,
       "confirm": ("Yes, that's right.",), "closing": ("No.",)},
      refunded),
    S("agent_please", "held_out_3", RP, {"request": ("Could you put me through to an agent, please?",)},
      said("connect you")),
    S("noisy_cant_make_it", "held_out_3", SCOT,
      {"request": ("I can't make my appointment, can we change it?",), "menu": ("#1",), "phone": ("#5551234567#",),
       "birth": ("Twelfth of April, nineteen eighty-five.",), "day": ("Next Monday, please.",),
       "time": ("Eleven thirty.", "The eleven thirty slot."), "confirm": ("Yes.",), "closing": ("No thanks.",)},
      booked("11:30"), snr_db=15),
    S("time_changed_at_confirm", "held_out_3", M3,
      {"request": ("I need to move my appointment.",), "menu": ("#1",), "phone": ("#5551234567#",), "birth": DOB,
       "day": ("next Wednesday",), "time": ("Two p.m.",),
       "confirm": ("Actually no, eleven thirty instead.", "Yes."), "closing": ("No.",)},
      booked("11:30")),
]  # fmt: skip


# What a caller who presses this menu key called about: a suggestion of anything else is refused.
WANTS = {"#1": ("appointment",), "#2": ("refund",), "#3": ("order",)}


def persona(sc: Scenario, hear: Callable[[np.ndarray], str]) -> Persona:
    wants = WANTS.get(str(sc.answers.get("menu", ("",))[0]), ())
    return Persona(sc.answers, hear, engine=sc.voice[0], voice=sc.voice[1], snr_db=sc.snr_db, wants=wants)


def ears() -> Callable[[np.ndarray], str]:
    """How the caller hears the agent: Whisper on the received audio (the agent's TTS is clear)."""
    asr = WhisperAsr("tiny.en", threads=1, context_s=30.0)
    return lambda pcm: asr.transcribe_sync(pcm.astype(np.int16).tobytes()).text


async def backend() -> tuple[web.AppRunner, web.Application]:
    app = create_app(":memory:", secret=SECRET)  # seeded: customer 1's appointment at 10:00
    app[ORIGINAL_DAY] = app[DB].execute("SELECT day FROM appointments WHERE customer_id=1").fetchone()[0]
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 8765).start()
    return runner, app


def agent_lines(lines: list[list[str]]) -> list[str]:
    return [text for who, text in lines if who == "agent"]


def reprompts(agent: list[str]) -> list[str]:
    return [t for t in agent if any(m in t.lower() for m in REPROMPT_MARKS)]


async def run(args: argparse.Namespace) -> int:
    os.environ["IVA_DEMO_SECRET"] = SECRET
    settings = load_settings()
    chosen = [s for s in SCENARIOS if not args.only or s.name in args.only.split(",")]
    rows = []
    hear = ears()
    async with AgentProcess([]) as agent:
        for sc in chosen:
            runner, app = await backend()
            t0 = time.monotonic()
            caller = persona(sc, hear)
            try:
                await place_call(settings.stack.extension, [Reply(caller.decide)] * 60, listen_s=0.5,
                                 sip_port=settings.stack.sip_port)  # fmt: skip
                await asyncio.sleep(1.0)  # the agent finishes writing its record
                stats = await agent.stats()
            finally:
                heard = stats["transcripts"][-1] if stats.get("transcripts") else []
                lines = agent_lines(heard)
                ok = sc.check(app, lines)
                await runner.cleanup()
            rep = reprompts(lines)
            twice = any(a == b for a, b in itertools.pairwise(rep))
            rows.append({"name": sc.name, "set": sc.set, "voice": ":".join(v or "default" for v in sc.voice),
                         "noise": sc.snr_db, "success": ok, "caller_turns": len(caller.heard),
                         "agent_prompts": len(lines), "reprompts": len(rep), "same_reprompt_twice": twice,
                         "seconds": round(time.monotonic() - t0, 1),
                         "transcript": [f"{who}: {text}" for who, text in heard],
                         "caller_heard": caller.heard})  # fmt: skip
            print(f"  {'PASS' if ok else 'FAIL'} {sc.set:8s} {sc.name:22s} reprompts={len(rep)} "
                  f"{'(same twice!) ' if twice else ''}{time.monotonic() - t0:.0f} s", flush=True)  # fmt: skip
    summary = {}
    for set_name in ("tuning", "held_out", "held_out_2", "held_out_3"):
        sel = [r for r in rows if r["set"] == set_name]
        if sel:
            summary[set_name] = {
                "calls": len(sel), "task_success": round(sum(r["success"] for r in sel) / len(sel), 3),
                "reprompts_per_call": round(sum(r["reprompts"] for r in sel) / len(sel), 2),
                "calls_with_same_reprompt_twice": sum(r["same_reprompt_twice"] for r in sel),
                "caller_turns_per_success": round(sum(r["caller_turns"] for r in sel if r["success"])
                                                  / max(1, sum(r["success"] for r in sel)), 1),
            }  # fmt: skip
    result = {"machine": machine_info(), "summary": summary, "calls": rows}
    md = [*heading("Task success on real SIP calls", result, "benchmarks/task_success.py"),
          "| set | calls | task success | reprompts / call | same reprompt twice | caller turns / success |",
          "|---|---|---|---|---|---|"]  # fmt: skip
    for name, s in summary.items():
        md.append(f"| {name} | {s['calls']} | {s['task_success']:.0%} | {s['reprompts_per_call']} | "
                  f"{s['calls_with_same_reprompt_twice']} | {s['caller_turns_per_success']} |")  # fmt: skip
    md += ["", "| call | set | voice | noise | result | reprompts |", "|---|---|---|---|---|---|"]
    md += [f"| {r['name']} | {r['set']} | {r['voice']} | {r['noise'] or ''} | {'pass' if r['success'] else 'FAIL'} | "
           f"{r['reprompts']} |" for r in rows]  # fmt: skip
    write_results(args.out, "task_success", result, md)
    print("\n".join(md[:8]))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", help="comma-separated scenario names")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    return asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
