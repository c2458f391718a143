"""Per-turn understanding + decision time over the conversation tests (target: p50/p99 <= 20 ms).

Tool webhook time is excluded (it is measured per tool call and subtracted), so the number is
what the engine itself adds to a turn. Run: .venv/bin/python benchmarks/dialog_decision.py
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ari_app.dialog.nlu import build_understanding
from tests.dialog.harness import load_conversations, run_conversation, start_backend


async def main(rounds: int = 3) -> None:
    runner, url = await start_backend()
    os.environ["DEMO_BACKEND_URL"] = url
    nlu = build_understanding()
    samples: list[float] = []
    try:
        for _ in range(rounds):
            for name, spec in load_conversations():
                if name == "tool_failures":  # its turns wait on deliberately slow/hanging tools
                    continue
                out = await run_conversation(spec, nlu, check=False)
                for turn, ms in zip(out.turns, out.decision_ms, strict=True):
                    tool_ms = sum(t["ms"] for t in turn.decision.get("tools", []))
                    samples.append(max(ms - tool_ms, 0.0))
    finally:
        await runner.cleanup()
    arr = np.array(samples)
    print(f"turns: {len(arr)}  (rounds={rounds}, tool time excluded)")
    print(f"decision ms: p50={np.percentile(arr, 50):.1f}  p90={np.percentile(arr, 90):.1f}  "
          f"p99={np.percentile(arr, 99):.1f}  max={arr.max():.1f}  target<=20")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
