"""A text simulator: type as the caller and watch the agent (``ari-app chat``).

Lines starting with ``#`` are key presses (``#1234``); an empty line is silence; ``/state``
prints the stored state, ``/quit`` leaves. Tools are called for real (start the demo backend).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from ari_app.dialog.engine import DialogEngine
from ari_app.dialog.loader import load_flows
from ari_app.dialog.policy import PolicySettings
from ari_app.dialog.state import CallContext, CallerInput, Turn


def _show(turn: Turn, write: Any) -> None:
    for action in turn.actions:
        if action.kind == "say":
            write(f"agent> {action.text}")
        elif action.kind == "transfer":
            write(f"agent> [transfer reason={action.reason} queue={action.queue}] {action.summary}")
        elif action.kind == "hangup":
            write(f"agent> [hangup: {action.reason}]")
    d = turn.decision
    shown = {
        k: d[k]
        for k in ("intent", "pattern", "flow", "step", "filled", "tools", "ms")
        if d.get(k) is not None
    }
    write(f"        {json.dumps(shown, default=str)}")


async def chat(flow_paths: list[str | Path], policy: PolicySettings | None = None) -> None:
    from ari_app.dialog.nlu import build_understanding
    from ari_app.dialog.tools import ToolClient

    flowset = load_flows(flow_paths)
    tools = ToolClient()
    engine = DialogEngine(flowset, build_understanding(), tools, policy)
    turn = engine.start(CallContext(call_id="chat", caller_number="5551234567"))
    _show(turn, print)
    loop = asyncio.get_running_loop()
    try:
        while not turn.state.ended:
            line = await loop.run_in_executor(None, lambda: input("you> "))
            line = line.strip()
            if line == "/quit":
                break
            if line == "/state":
                print(json.dumps(turn.state.to_dict(), indent=2, default=str))
                continue
            if line.startswith("#"):
                caller = CallerInput(digits=line[1:])
            elif not line:
                caller = CallerInput(no_input=True)
            else:
                caller = CallerInput(text=line)
            turn = await engine.handle(
                turn.state, caller, on_action=lambda a: print(f"agent> (meanwhile) {a.text}")
            )
            _show(turn, print)
    except (EOFError, KeyboardInterrupt):
        pass
    finally:
        await tools.close()


def run_chat(flow_paths: list[str | Path], policy: PolicySettings | None = None) -> None:
    """Blocking entry point for the CLI. Raises loader.FlowError on bad flow files."""
    asyncio.run(chat(flow_paths, policy))


if __name__ == "__main__":
    run_chat(sys.argv[1:] or ["flows"])
