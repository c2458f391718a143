"""session: how long a call's writes wait during a Redis Sentinel failover, and what is lost.

    .venv/bin/python benchmarks/sentinel_failover.py [--rounds 5] [--out benchmarks/results]

Each round starts a fresh lab (ari_app/redis_lab.py: primary, replica, three sentinels on free
loopback ports, down-after-milliseconds 1000), opens a SessionStore through the sentinels with the
shipped session settings, and saves a turn every 10 ms (the engine's path) while the primary is
SIGKILLed ("kill") or switched over with SENTINEL FAILOVER ("graceful"). Per round: the outage as
the store saw it (first queued turn -> first turn written at once again), turns queued and
replayed, turns lost (said but not on the new primary). Writes sentinel_failover.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis.asyncio as aioredis

from ari_app.redis_lab import SentinelLab
from ari_app.session.models import CallRecord
from ari_app.session.settings import SessionSettings
from ari_app.session.store import SessionStore
from benchmarks.common.machine import machine_info


async def one_round(kind: str, run_dir: Path) -> dict[str, Any]:
    with SentinelLab(run_dir) as lab:
        store = SessionStore(
            lab.redis_settings(), "bench", SessionSettings(key_prefix=f"bench-{uuid.uuid4().hex[:8]}")
        )
        await store.connect()
        sid = f"s-{uuid.uuid4().hex[:8]}"
        await store.create(CallRecord(session_id=sid, channel_id=f"chan-{sid}", caller_number="+15551230000"))
        turns: list[tuple[int, bool, float]] = []
        write = store.redis.write
        turn = 0

        async def spy(build):  # type: ignore[no-untyped-def]
            turns.append((turn, now := await write(build), time.monotonic()))
            return now

        store.redis.write = spy  # type: ignore[method-assign]
        old = lab.nodes["redis-1"].port

        async def event() -> float:
            await asyncio.sleep(0.5)
            t0 = time.monotonic()
            lab.stop("redis-1") if kind == "kill" else lab.failover()
            await asyncio.to_thread(lab.wait_failover, old)
            return time.monotonic() - t0

        happening = asyncio.ensure_future(event())
        while not happening.done() or not turns[-1][1] or store.pending_writes:
            turn += 1
            await store.save_turn(sid, {"n": turn}, [{"speaker": "caller", "text": f"turn {turn}"}])
            await asyncio.sleep(0.01)
        for _ in range(20):  # and on a little, as the call does
            turn += 1
            await store.save_turn(sid, {"n": turn}, [{"speaker": "caller", "text": f"turn {turn}"}])
            await asyncio.sleep(0.01)
        sentinels_s = await happening
        new = aioredis.from_url(lab.data_url(lab.primary_name() or "redis-2"))
        stored = {
            int(json.loads(t)["text"].removeprefix("turn "))
            for t in await new.lrange(store.keys.transcript(sid), 0, -1)
        }
        await new.aclose()
        await store.close()
        down = next(t for _, now, t in turns if not now)
        back = next(t for _, now, t in turns if now and t > down)
        return {
            "kind": kind,
            "client_outage_s": round(back - down, 3),
            "sentinels_new_primary_s": round(sentinels_s, 3),
            "turns_said": len(turns),
            "turns_queued_replayed": sum(not now for _, now, _ in turns),
            "turns_lost": len({n for n, _, _ in turns} - stored),
        }  # fmt: skip


async def main(args: argparse.Namespace) -> None:
    runs = []
    with tempfile.TemporaryDirectory(prefix="sentinel-bench-") as tmp:
        for i in range(args.rounds):
            for kind in ("kill", "graceful"):
                runs.append(r := await one_round(kind, Path(tmp) / f"{kind}-{i}"))
                print(json.dumps(r), flush=True)
    summary = {}
    for kind in ("kill", "graceful"):
        outs = [r["client_outage_s"] for r in runs if r["kind"] == kind]
        summary[kind] = {"client_outage_s_median": statistics.median(outs), "client_outage_s_max": max(outs),
                         "turns_lost_total": sum(r["turns_lost"] for r in runs if r["kind"] == kind)}  # fmt: skip
    result = {
        "machine": machine_info(),
        "lab": {"down_after_ms": 1000, "failover_timeout_ms": 3000, "session": "shipped defaults",
                "turn_every_ms": 10},
        "summary": summary,
        "runs": runs,
    }  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sentinel_failover.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    asyncio.run(main(ap.parse_args()))
