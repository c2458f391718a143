"""p50/p99 latency of SessionStore.save_turn and get against the real Redis of the embedded stack.

    .venv/bin/python benchmarks/session_store.py [--turns 500] [--calls 20] [--redis-url URL]

A realistic turn: a ~2 KB conversation state, two transcript lines, one metrics dict. `get` is
measured on calls that already hold `--turns` turns, so it shows how reads grow with call length.
Several calls run concurrently to show contention on one Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

from ari_app.config import load_settings
from ari_app.session.models import CallRecord
from ari_app.session.settings import SessionSettings
from ari_app.session.store import SessionStore


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] * 1000


async def one_call(store: SessionStore, turns: int, save_ms: list[float], get_ms: list[float]) -> None:
    sid = f"bench-{uuid.uuid4().hex[:10]}"
    await store.create(CallRecord(session_id=sid, channel_id=f"chan-{sid}", caller_number="+15550001111"))
    state = {"flow": "billing", "step": "confirm", "slots": {"amount": "42.50", "city": "Lyon"},
             "history": [f"turn text number {i} " * 3 for i in range(25)]}  # fmt: skip
    for i in range(turns):
        entries = [{"speaker": "caller", "text": f"I would like to pay my bill number {i}", "confidence": 0.91},
                   {"speaker": "agent", "text": "Sure, can you confirm the amount of 42 euros 50?"}]  # fmt: skip
        t0 = time.perf_counter()
        await store.save_turn(
            sid, {**state, "turn": i}, entries, {"asr_ms": 180.0, "nlu_ms": 9.5, "tts_ms": 210.0}
        )
        save_ms.append(time.perf_counter() - t0)
        if i % 10 == 9:
            t0 = time.perf_counter()
            await store.get(sid)
            get_ms.append(time.perf_counter() - t0)
    await store.end(sid, "benchmark")


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--turns", type=int, default=200, help="turns per call (default 200)")
    ap.add_argument("--calls", type=int, default=10, help="concurrent calls (default 10)")
    ap.add_argument("--redis-url", default=None, help="default: redis.url from the configuration")
    args = ap.parse_args()
    url = args.redis_url or load_settings().redis.url
    prefix = f"bench-{uuid.uuid4().hex[:6]}"
    store = SessionStore(url, "bench", SessionSettings(key_prefix=prefix, retention_seconds=60))
    await store.connect()
    save_ms: list[float] = []
    get_ms: list[float] = []
    t0 = time.perf_counter()
    await asyncio.gather(*(one_call(store, args.turns, save_ms, get_ms) for _ in range(args.calls)))
    wall = time.perf_counter() - t0
    async for key in store.redis.client.scan_iter(match=f"{prefix}:*"):
        await store.redis.client.delete(key)
    await store.close()
    print(f"redis {url}: {args.calls} concurrent calls x {args.turns} turns in {wall:.2f} s "
          f"({len(save_ms) / wall:.0f} turns/s)")  # fmt: skip
    for name, s in (("save_turn", save_ms), ("get", get_ms)):
        print(f"{name:10s} n={len(s):5d}  p50={pct(s, 50):6.2f} ms  p99={pct(s, 99):6.2f} ms  "
              f"max={max(s) * 1000:6.2f} ms  mean={statistics.fmean(s) * 1000:6.2f} ms")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
