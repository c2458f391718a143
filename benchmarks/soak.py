"""Soak: several hundred real SIP calls of mixed lengths into one running agent, hanging up at
every step (greeting, listening, mid-answer, on hold, with a person), some transfers, some key
entries. Then: what is left — channels and bridges in Asterisk, RTP ports, live calls, Redis keys
without a TTL, calls still listed active — and whether memory and descriptors stay flat.

    .venv/bin/python benchmarks/soak.py [--calls 300] [--concurrency 6] [--out benchmarks/results]

The stack must be up and nothing else may use the ARI app. The agent is a real Service in its
own process (benchmarks/common/agent_process.py) on its own Redis key prefix. Writes soak.json and
the soak section of faults.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ari_app.ari import AriClient
from ari_app.config import load_settings
from ari_app.demo import caller_voice
from ari_app.session import SessionSettings, SessionStore
from ari_app.testcaller.agent_phone import AgentPhone
from ari_app.testcaller.caller import Dtmf, Silence, Step, Utterance, WaitForAgent, place_call
from benchmarks.common.agent_process import AgentProcess
from benchmarks.common.machine import machine_info

REPO = Path(__file__).resolve().parent.parent
QUESTIONS = ["what are your opening hours", "where are you located", "I need to reschedule my appointment"]
ASK_PERSON = "I want to talk to a person"
SETTLE_S = 8.0  # after the last call: hang-ups and tear-downs finish
SAMPLE_EVERY = 25  # calls between health samples


def script_for(kind: str, rng: random.Random, say: dict[str, Utterance]) -> list[Step]:
    q = say[rng.choice(QUESTIONS)]
    if kind == "greeting_hangup":  # hangs up while the greeting plays (or before)
        return [Silence(rng.uniform(0.1, 3.0))]
    if kind == "silent":  # says nothing: no-input reprompt, hangs up somewhere in it
        return [Silence(rng.uniform(4.0, 12.0))]
    if kind == "mid_answer":  # asks, hangs up while the agent decides or answers
        return [WaitForAgent(timeout_s=20), q, Silence(rng.uniform(0.2, 3.0))]
    if kind == "two_turns":
        return [WaitForAgent(timeout_s=20), q, WaitForAgent(timeout_s=20), say[rng.choice(QUESTIONS)],
                WaitForAgent(timeout_s=20)]  # fmt: skip
    if kind == "keys":
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(3, 12)))
        return [WaitForAgent(timeout_s=20), Dtmf(digits + "#"), Silence(rng.uniform(0.5, 4.0))]
    # transfer: hangs up on hold, while the person's phone rings, or while bridged to the person
    return [WaitForAgent(timeout_s=20), say[ASK_PERSON], Silence(rng.uniform(1.0, 14.0))]


KINDS = [
    ("greeting_hangup", 3),
    ("silent", 1),
    ("mid_answer", 3),
    ("two_turns", 2),
    ("keys", 1),
    ("transfer", 1),
]


async def redis_leftovers(store: SessionStore) -> dict[str, int]:
    r, k = store.redis.client, store.keys
    forever = total = 0
    async for key in r.scan_iter(match=f"{k.prefix}:*"):
        if key.decode() == k.active:  # the index set itself: checked by its size below
            continue
        total += 1
        if await r.ttl(key) == -1:
            forever += 1
    return {"keys": total, "keys_without_ttl": forever, "active_set": int(await r.scard(k.active))}


def slope_per_100(samples: list[dict[str, Any]], field: str) -> float:
    if len(samples) < 3:
        return 0.0
    x = np.array([s["calls_done"] for s in samples], dtype=float)
    y = np.array([s[field] for s in samples], dtype=float)
    return round(float(np.polyfit(x, y, 1)[0]) * 100, 2)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--concurrency", type=int, default=6)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = ap.parse_args()
    settings = load_settings()
    rng = random.Random(args.seed)
    prefix = f"soak-{uuid.uuid4().hex[:8]}"
    print(f"rendering caller lines; agent on key prefix {prefix}", flush=True)
    pcm = await caller_voice([*QUESTIONS, ASK_PERSON])
    say = {t: Utterance(pcm=pcm[t]) for t in pcm}
    store = SessionStore(settings.redis.url, "soak-reader", SessionSettings(key_prefix=prefix))
    await store.connect()
    env = {"ARI_APP_SESSION__KEY_PREFIX": prefix, "ARI_APP_TRANSFER__TIMEOUT": "8"}
    phone = await AgentPhone("127.0.0.1", settings.stack.agent_port, mode="answer", ring_delay_s=1.0).start()
    kinds = [k for k, w in KINDS for _ in range(w)]
    plan = [rng.choice(kinds) for _ in range(args.calls)]
    scripts = [script_for(k, rng, say) for k in plan]
    samples: list[dict[str, Any]] = []
    outcomes: dict[str, int] = {}
    done = 0
    t0 = time.monotonic()
    async with AgentProcess([REPO / "flows"], env=env) as agent, AriClient(settings.ari) as ari:

        async def sample() -> None:
            s = await agent.stats()
            samples.append({"calls_done": done, "t_s": round(time.monotonic() - t0, 1),
                            **{k: s[k] for k in ("rss_kb", "fds", "live_calls", "ports_in_use", "tasks")}})  # fmt: skip

        await sample()
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(args.calls):
            queue.put_nowait(i)

        async def caller() -> None:
            nonlocal done
            while not queue.empty():
                i = queue.get_nowait()
                try:
                    await asyncio.wait_for(place_call(settings.stack.extension, scripts[i], listen_s=0,
                                                      sip_port=settings.stack.sip_port), 90)  # fmt: skip
                    result = "ok"
                except Exception as e:  # counted, the soak goes on
                    result = type(e).__name__
                outcomes[result] = outcomes.get(result, 0) + 1
                done += 1
                if done % SAMPLE_EVERY == 0:
                    await sample()
                    last = samples[-1]
                    print(f"{done}/{args.calls} calls, rss {last['rss_kb'] // 1024} MB, fds {last['fds']}, "
                          f"live {last['live_calls']}", flush=True)  # fmt: skip

        await asyncio.gather(*(caller() for _ in range(args.concurrency)))
        await asyncio.sleep(SETTLE_S)
        await sample()
        channels = [c.id for c in await ari.list_channels()]
        bridges = [b.id for b in await ari.list_bridges()]
    await phone.stop()
    left = await redis_leftovers(store)
    await store.close()
    wall = time.monotonic() - t0
    result = {
        "machine": machine_info(),
        "calls": args.calls, "concurrency": args.concurrency, "seed": args.seed, "wall_s": round(wall, 1),
        "mix": {k: plan.count(k) for k, _ in KINDS}, "caller_outcomes": outcomes,
        "leaked": {"channels": channels, "bridges": bridges, "ports_in_use": samples[-1]["ports_in_use"],
                   "live_calls": samples[-1]["live_calls"], **left},
        "rss_kb": {"start": samples[0]["rss_kb"], "end": samples[-1]["rss_kb"],
                   "slope_per_100_calls": slope_per_100(samples[1:], "rss_kb")},
        "fds": {"start": samples[0]["fds"], "end": samples[-1]["fds"],
                "slope_per_100_calls": slope_per_100(samples[1:], "fds")},
        "agent_phone_calls": len(phone.calls),
        "samples": samples,
    }  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "soak.json").write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "samples"}, indent=1))


if __name__ == "__main__":
    asyncio.run(main())
