"""Task success on real SIP calls: scripted callers through every reference flow, judged by what
really changed in the backend (or the right hand-over), not by what the agent said it did.

    .venv/bin/python benchmarks/task_success.py [--only NAME] [--out benchmarks/results]

The stack (Asterisk + Redis) must be up (`ari-app stack up`). The agent runs as a real Service in
its own process with the shipped flows; the demo backend runs here, fresh for every call, so a
check reads its database after the call. Each caller waits for the agent to finish (reactive
turn-taking) and then says its next line: happy paths, over-informative and out-of-order
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
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ari_app.config import load_settings
from ari_app.demo_backend.app import DB, create_app
from ari_app.testcaller.caller import Dtmf, Silence, Step, Utterance, WaitForAgent, place_call
from benchmarks.common.agent_process import AgentProcess
from benchmarks.common.machine import machine_info

REPO = Path(__file__).resolve().parent.parent
SECRET = "task-success-bench-secret"
REPROMPT_MARKS = ("sorry", "i didn't", "i got ", "please say", "please pick", "please tell", "try once more",
                  "isn't available", "still to come", "keypad", "are you still there")  # fmt: skip
Check = Callable[[web.Application, list[str]], bool]


def booked(at: str) -> Check:
    def check(app: web.Application, said: list[str]) -> bool:
        row = app[DB].execute("SELECT day, time FROM appointments WHERE customer_id=1").fetchone()
        return row is not None and row[1] == at

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
    lines: tuple[str | None, ...]  # speech; "#123" keys; None: say nothing this turn
    check: Check
    snr_db: float | None = None


S = Scenario
SLT, KAL, ESPEAK = ("flite", "slt"), ("flite", "kal"), ("espeak-ng", None)
AWB, RMS, F3 = ("flite", "awb"), ("flite", "rms"), ("espeak-ng", "en-us+f3")
SCENARIOS = [
    # --- tuning voices and phrasings
    S(
        "reschedule_happy",
        "tuning",
        SLT,
        (
            "I need to reschedule my appointment.",
            "five five five, one two three, four five six seven",
            "April twelfth, nineteen eighty five",
            "next Wednesday",
            "eleven thirty",
            "yes",
            "no thanks",
        ),
        booked("11:30"),
    ),
    S(
        "reschedule_keys",
        "tuning",
        KAL,
        (
            "I want to move my appointment.",
            "#5551234567#",
            "April 12th 1985",
            "next Monday",
            "#2",
            "yes",
            "no",
        ),
        booked("11:30"),
    ),
    S(
        "order_status",
        "tuning",
        SLT,
        ("Where is my order?", "one oh four five two", "no thanks"),
        said("shipped"),
    ),
    S("order_keys", "tuning", ESPEAK, ("I want to check my order status", "#10452", "no"), said("shipped")),
    S(
        "refund_happy",
        "tuning",
        KAL,
        (
            "I was charged twice last month and I need a refund.",
            "five five five, one two three, four five six seven",
            "April twelfth nineteen eighty five",
            "yes please",
            "no thanks",
        ),
        refunded,
    ),
    S(
        "faq_digression",
        "tuning",
        SLT,
        (
            "I need to reschedule my appointment.",
            "What are your opening hours?",
            "five five five, one two three, four five six seven",
            "April twelfth, nineteen eighty five",
            "next Wednesday",
            "two pm",
            "yes",
            "no",
        ),
        booked("14:00"),
    ),
    S(
        "noisy_order",
        "tuning",
        KAL,
        ("Where is my order?", "one oh four five two", "no"),
        said("shipped"),
        snr_db=15,
    ),
    S("silence", "tuning", SLT, (None, None, None), said("connect you")),
    # --- held out: voices and phrasings not used while tuning
    S(
        "overinformative",
        "held_out",
        AWB,
        (
            "Hi, this is Dana. My number is five five five, one two three, four five six seven, and I'd like to move my appointment.",
            "I was born on April twelfth, nineteen eighty five.",
            "Wednesday would be good.",
            "The eleven thirty one.",
            "Yes please.",
            "That's all.",
        ),
        booked("11:30"),
    ),
    S(
        "correction_on_offer",
        "held_out",
        RMS,
        (
            "Can I change the day of my appointment?",
            "five five five, one two three, four five six seven",
            "It's April twelfth, nineteen eighty five.",
            "next Tuesday",
            "Actually, make that Wednesday.",
            "Eleven thirty please.",
            "Yes.",
            "No, thank you.",
        ),
        booked("11:30"),
    ),
    S(
        "not_on_offer",
        "held_out",
        F3,
        (
            "I have to reschedule my visit.",
            "five five five one two three four five six seven",
            "April twelfth nineteen eighty five",
            "next Wednesday",
            "Can I do four instead?",
            "Two o'clock then.",
            "Yes.",
            "No.",
        ),
        booked("14:00"),
    ),
    S(
        "refund_out_of_order",
        "held_out",
        AWB,
        (
            "Hi, I got billed twice for the same thing, my number is five five five one two three four five six seven.",
            "April twelfth nineteen eighty five",
            "Yes, refund it.",
            "No, that's everything.",
        ),
        refunded,
    ),
    S(
        "wrong_credentials",
        "held_out",
        RMS,
        (
            "I need a refund for a double charge.",
            "five five five, zero zero zero, one one one one",
            "March third, nineteen ninety",
            "nothing else",
        ),
        nothing_changed_and(said("couldn't find an account")),
    ),
    S(
        "noisy_reschedule",
        "held_out",
        AWB,
        (
            "I'd like to reschedule my appointment please.",
            "#5551234567#",
            "April twelfth, nineteen eighty five",
            "next Wednesday",
            "the second one",
            "yes",
            "no",
        ),
        booked("11:30"),
        snr_db=15,
    ),
    S("ask_for_person", "held_out", F3, ("Can I talk to a real person?",), said("connect you")),
]


def script(sc: Scenario) -> list[Step]:
    steps: list[Step] = []
    for line in sc.lines:
        steps.append(WaitForAgent(timeout_s=20, quiet_s=1.0))
        if line is None:
            steps.append(Silence(7.0))
        elif line.startswith("#"):
            steps.append(Dtmf(line[1:]))
        else:
            steps.append(Utterance(text=line, engine=sc.voice[0], voice=sc.voice[1], snr_db=sc.snr_db))
    steps.append(WaitForAgent(timeout_s=20, quiet_s=1.5))
    return steps


async def backend() -> tuple[web.AppRunner, web.Application]:
    app = create_app(":memory:", secret=SECRET)
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
    async with AgentProcess([]) as agent:
        for sc in chosen:
            runner, app = await backend()
            t0 = time.monotonic()
            try:
                await place_call(settings.stack.extension, script(sc), listen_s=0.5,
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
                         "noise": sc.snr_db, "success": ok, "caller_turns": len(sc.lines),
                         "agent_prompts": len(lines), "reprompts": len(rep), "same_reprompt_twice": twice,
                         "seconds": round(time.monotonic() - t0, 1),
                         "transcript": [f"{who}: {text}" for who, text in heard]})  # fmt: skip
            print(f"  {'PASS' if ok else 'FAIL'} {sc.set:8s} {sc.name:22s} reprompts={len(rep)} "
                  f"{'(same twice!) ' if twice else ''}{time.monotonic() - t0:.0f} s", flush=True)  # fmt: skip
    summary = {}
    for set_name in ("tuning", "held_out"):
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
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "task_success.json").write_text(json.dumps(result, indent=2) + "\n")
    md = ["# Task success on real SIP calls", "",
          f"{result['machine'].get('date', '')} · {result['machine'].get('cpu_model', '')} · "
          "`benchmarks/task_success.py`", "",
          "| set | calls | task success | reprompts / call | same reprompt twice | caller turns / success |",
          "|---|---|---|---|---|---|"]  # fmt: skip
    for name, s in summary.items():
        md.append(f"| {name} | {s['calls']} | {s['task_success']:.0%} | {s['reprompts_per_call']} | "
                  f"{s['calls_with_same_reprompt_twice']} | {s['caller_turns_per_success']} |")  # fmt: skip
    md += ["", "| call | set | voice | noise | result | reprompts |", "|---|---|---|---|---|---|"]
    md += [f"| {r['name']} | {r['set']} | {r['voice']} | {r['noise'] or ''} | {'pass' if r['success'] else 'FAIL'} | "
           f"{r['reprompts']} |" for r in rows]  # fmt: skip
    (args.out / "task_success.md").write_text("\n".join(md) + "\n")
    print("\n".join(md[:8]))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", help="comma-separated scenario names")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    return asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
