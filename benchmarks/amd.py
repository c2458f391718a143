"""Answering-machine detection: our detector (VAD timing + first words) vs Asterisk's AMD().

    .venv/bin/python benchmarks/amd.py [--asterisk] [--out benchmarks/results]

The set (``ari_app.testcaller.greetings``): 7 person-style answers ("Hello?", "Hi, this is
Maria.") and 6 voicemail greetings (one as short as a person's: "Smith. Leave a message."), the
machines with and without a beep, every third one on a 15 dB noisy line, all through the 8 kHz
µ-law channel. Voices: flite slt and kal are the *tuning* voices (the detector's thresholds were
set looking at them only); flite awb, rms, piper and hibari are *held out*.

- ours: ``outbound.answering.detect`` exactly as a call runs it (Silero VAD per 20 ms frame, the
  Whisper ASR on a short first utterance), offline on the same audio;
- ``--asterisk``: each greeting is played by a real SIP callee on the embedded stack; we
  originate to it, send the answered channel through ``AMD()`` ([ari-app-amd]) and read
  AMDSTATUS. Needs the stack up and no agent running (we take the ARI app's events).

Per detector and voice group: accuracy, persons taken for machines (the costly error: a person
hears a recorded message), machines taken for persons, unsure, and time to decision from answer.
Writes amd.json and amd.md with the machine it ran on.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ari_app.media.transport import AudioFrame
from ari_app.outbound.amd import AmdSettings
from ari_app.outbound.answering import detect
from ari_app.speech.audio import frames
from ari_app.speech.evaluation import telephone_channel
from ari_app.testcaller.greetings import HUMAN, MACHINE, Greeting, corpus
from benchmarks.common.machine import machine_info

TUNING = {"flite-slt", "flite-kal"}


def packaged_voices() -> dict[str, list[np.ndarray]]:
    from ari_app.speech.settings import TtsSettings
    from ari_app.speech.tts import make_tts

    out = {}
    for engine in ("piper", "hibari"):
        tts = make_tts(TtsSettings(engine=engine))
        out[engine] = [np.frombuffer(tts.synthesize_sync(t), dtype="<i2").copy() for t in (*HUMAN, *MACHINE)]
    return out


async def ours(greetings: list[Greeting]) -> list[dict]:
    from ari_app.speech.asr import WhisperAsr
    from ari_app.speech.vad import SileroVad

    asr = WhisperAsr("tiny.en")
    rows = []
    for i, g in enumerate(greetings):
        pcm = telephone_channel(g.pcm.astype("<i2").tobytes())
        fed = 0

        async def stream(pcm: bytes = pcm) -> AsyncIterator[AudioFrame]:
            nonlocal fed
            for n, f in enumerate(frames(pcm)):
                fed = n + 1
                yield AudioFrame(f, received_at=n * 0.02, sequence=n)

        t0 = time.perf_counter()
        verdict, reason = await detect(stream(), SileroVad(), asr, AmdSettings())
        rows.append(row(g, "ours", verdict, fed * 0.02, reason, time.perf_counter() - t0))
        print(f"\r  ours {i + 1}/{len(greetings)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return rows


async def asterisk(greetings: list[Greeting]) -> list[dict]:
    from ari_app.ari import AriClient, EventStream
    from ari_app.config import load_settings
    from ari_app.outbound.originate import AMD_CONTEXT
    from ari_app.testcaller.agent_phone import AgentPhone, CalleePlan

    s = load_settings()
    plans = {f"9{i:04d}": CalleePlan("answer", 0.2, g.pcm) for i, g in enumerate(greetings)}
    phone = await AgentPhone("127.0.0.1", s.stack.callee_port, plans=plans).start()
    events = EventStream(s.ari)
    rows: list[dict] = []
    sem = asyncio.Semaphore(4)
    async with AriClient(s.ari) as ari:
        events.start()
        await asyncio.wait_for(events.connected.wait(), 10)

        async def one(i: int, g: Greeting) -> None:
            cid = f"amdbench-{i}"
            async with sem:
                q = events.subscribe(cid)
                await ari.originate(f"PJSIP/callee/sip:9{i:04d}@127.0.0.1:{s.stack.callee_port}", channel_id=cid,
                                    app_args="bench", timeout=20)  # fmt: skip
                verdict, reason, t_answer = "unsure", "no answer", None
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    try:
                        ev = await asyncio.wait_for(q.get(), deadline - time.monotonic())
                    except TimeoutError:
                        break
                    if ev.type == "StasisStart" and ev.args[:1] == ["bench"]:
                        t_answer = time.monotonic()
                        await ari.continue_in_dialplan(cid, AMD_CONTEXT, "s", 1)
                    elif ev.type == "StasisStart" and ev.args[:1] == ["amd"]:
                        status = (ev.args[1] if len(ev.args) > 1 else "").upper()
                        verdict = {"HUMAN": "human", "MACHINE": "machine"}.get(status, "unsure")
                        reason = ",".join(ev.args[1:3])
                        break
                    elif ev.type == "ChannelDestroyed":
                        break
                took = time.monotonic() - t_answer if t_answer else None
                await ari.hangup(cid)
                events.unsubscribe(cid)
                rows.append(row(g, "asterisk", verdict, took, reason, 0.0))
                print(f"\r  asterisk {len(rows)}/{len(greetings)}", end="", file=sys.stderr, flush=True)

        await asyncio.gather(*(one(i, g) for i, g in enumerate(greetings)))
        print(file=sys.stderr)
    await events.close()
    await phone.stop()
    return rows


def row(g: Greeting, detector: str, verdict: str, decided_s: float | None, reason: str, cpu_s: float) -> dict:
    return {"detector": detector, "greeting": g.name, "who": g.who, "voice": g.voice, "beep": g.beep,
            "noisy": g.noisy, "held_out": g.voice not in TUNING, "verdict": verdict,
            "decided_s": None if decided_s is None else round(decided_s, 2), "reason": reason,
            "compute_s": round(cpu_s, 3)}  # fmt: skip


def summary(rows: list[dict]) -> list[dict]:
    out = []
    for det in sorted({r["detector"] for r in rows}):
        for group, pick in (("tuning", False), ("held out", True)):
            rs = [r for r in rows if r["detector"] == det and r["held_out"] == pick]
            if not rs:
                continue
            humans = [r for r in rs if r["who"] == "human"]
            machines = [r for r in rs if r["who"] == "machine"]
            times = sorted(r["decided_s"] for r in rs if r["decided_s"] is not None)
            out.append({
                "detector": det, "set": group, "n": len(rs),
                "accuracy": round(sum(r["verdict"] == r["who"] for r in rs) / len(rs), 3),
                "person_as_machine": sum(r["verdict"] == "machine" for r in humans),
                "persons": len(humans),
                "machine_as_person": sum(r["verdict"] == "human" for r in machines),
                "machines": len(machines),
                "unsure": sum(r["verdict"] == "unsure" for r in rs),
                "decided_p50_s": times[len(times) // 2] if times else None,
                "decided_p95_s": times[min(len(times) - 1, int(len(times) * 0.95))] if times else None,
            })  # fmt: skip
    return out


def markdown(summ: list[dict], machine: dict) -> str:
    lines = [
        "# Answering-machine detection",
        "",
        f"Machine: {machine}",
        "",
        "Command: `.venv/bin/python benchmarks/amd.py --asterisk`. Unsure counts as wrong in the "
        "accuracy (the agent then treats the callee as a person and speaks).",
        "",
        "| detector | set | n | accuracy | person → machine | machine → person | unsure | decided p50 / p95 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in summ:
        lines.append(
            f"| {s['detector']} | {s['set']} | {s['n']} | {s['accuracy']:.1%} | "
            f"{s['person_as_machine']}/{s['persons']} | {s['machine_as_person']}/{s['machines']} | {s['unsure']} | "
            f"{s['decided_p50_s']} / {s['decided_p95_s']} s |"
        )
    return "\n".join(lines) + "\n"


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--asterisk", action="store_true", help="also measure AMD() on the embedded stack")
    ap.add_argument("--no-packaged-voices", action="store_true", help="flite voices only (quicker)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()
    print("building the greeting set ...", file=sys.stderr)
    greetings = corpus(None if args.no_packaged_voices else packaged_voices())
    print(f"{len(greetings)} greetings", file=sys.stderr)
    rows = await ours(greetings)
    if args.asterisk:
        rows += await asterisk(greetings)
    summ = summary(rows)
    machine = machine_info()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "amd.json").write_text(
        json.dumps({"machine": machine, "summary": summ, "rows": rows}, indent=1)
    )
    (args.out / "amd.md").write_text(markdown(summ, machine))
    print(markdown(summ, machine))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
