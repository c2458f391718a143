"""Runs YAML conversation transcripts against the engine with the real understanding and a
demo backend on a loopback port. Shared by the pytest file and the benchmark."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from ari_app.demo_backend import create_app
from ari_app.dialog.engine import DialogEngine
from ari_app.dialog.loader import load_flows
from ari_app.dialog.state import CallContext, CallerInput, Turn
from ari_app.dialog.tools import ToolClient

ROOT = Path(__file__).resolve().parents[2]
CONVERSATIONS = Path(__file__).parent / "conversations"
SECRET = "test-secret-for-demo-backend"


async def start_backend(middlewares: Sequence[Any] = ()) -> tuple[web.AppRunner, str]:
    """The demo backend on a free port; ``middlewares`` run first (e.g. a fault suite's delays)."""
    os.environ["IVA_DEMO_SECRET"] = SECRET
    app = create_app(":memory:", secret=SECRET, faults=True)
    app.middlewares[:0] = list(middlewares)
    # The "hang" fault never answers: don't wait aiohttp's default 60 s for it at clean-up.
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


def caller_input(line: Any) -> CallerInput:
    if isinstance(line, dict):
        return CallerInput(text=line.get("text"), digits=line.get("digits"),
                           asr_confidence=line.get("confidence", 1.0), no_input=line.get("silence", False),
                           alternatives=tuple(line.get("alternatives", ())), picked=line.get("picked"))  # fmt: skip
    if isinstance(line, bool):  # YAML reads a bare yes/no as a boolean
        line = "yes" if line else "no"
    line = str(line)
    if line == "<silence>":
        return CallerInput(no_input=True)
    if line.startswith("#"):
        return CallerInput(digits=line[1:])
    return CallerInput(text=line)


@dataclass
class Outcome:
    turns: list[Turn] = field(default_factory=list)
    interim: list[list[str]] = field(default_factory=list)
    decision_ms: list[float] = field(default_factory=list)


async def run_conversation(spec: dict[str, Any], nlu: Any, check: bool = True) -> Outcome:
    """Play the caller lines; with ``check`` assert each expectation, naming the turn that failed."""
    paths = [ROOT / p for p in spec.get("flows", ["flows"])]
    engine = DialogEngine(load_flows(paths), nlu, ToolClient())
    out = Outcome()
    try:
        turn = engine.start(CallContext(call_id="test", caller_number="5551234567",
                                        flow=spec.get("outbound_flow"), slots=spec.get("slots", {})))  # fmt: skip
        if check:
            _expect(spec.get("greeting", {}), turn, [], "greeting")
        for i, step in enumerate(spec["turns"]):
            heard: list[str] = []
            started = time.perf_counter()
            turn = await engine.handle(
                turn.state, caller_input(step["caller"]), on_action=lambda a, h=heard: h.append(a.text)
            )
            out.decision_ms.append((time.perf_counter() - started) * 1000)
            out.turns.append(turn)
            out.interim.append(heard)
            if check:
                _expect(step, turn, heard, f"turn {i + 1} ({step['caller']!r})")
            if step.get("transfer_fails"):  # as the voice agent does when a hand-over did not connect
                turn = Turn(turn.actions, engine.transfer_returned(turn.state), turn.decision)
    finally:
        await engine.tool_client.close()  # type: ignore[union-attr]
    return out


def _expect(step: dict[str, Any], turn: Turn, heard: list[str], where: str) -> None:
    said = " ".join(turn.says)
    for text in _list(step.get("says")):
        assert text.lower() in said.lower(), f"{where}: expected the agent to say {text!r}; it said {said!r}"
    for text in _list(step.get("not_says")):
        assert text.lower() not in said.lower(), (
            f"{where}: the agent should not say {text!r}; it said {said!r}"
        )
    for text in _list(step.get("holding")):
        assert any(text.lower() in h.lower() for h in heard), (
            f"{where}: no holding phrase {text!r} (got {heard})"
        )
    if "listens" in step:  # the expectation handed to recognition (slot-aware ASR)
        listens = [
            {"slot_type": a.slot_type, "choices": list(a.choices)} for a in turn.actions if a.kind == "listen"
        ]
        assert listens == [step["listens"]], (
            f"{where}: recognition told {listens}, expected {step['listens']}"
        )
    frame = turn.state.frame
    for name, value in (step.get("slots") or {}).items():
        got = frame.slots.get(name) if frame else None
        assert str(got) == str(value), f"{where}: slot {name} = {got!r}, expected {value!r}"
    if "transfer" in step:
        t = turn.transfer
        assert t is not None, f"{where}: expected a transfer ({step['transfer']}); actions: {turn.actions}"
        assert t.reason == step["transfer"], (
            f"{where}: transfer reason {t.reason!r}, expected {step['transfer']!r}"
        )
        assert t.summary, f"{where}: transfer without a summary"
        for text in _list(step.get("summary_says")):
            assert text in t.summary, f"{where}: summary {t.summary!r} lacks {text!r}"
        for text in _list(step.get("summary_lacks")):
            assert text not in t.summary, f"{where}: summary {t.summary!r} leaks {text!r}"
    elif step.get("no_transfer", True) and turn.transfer is not None and "hangup" not in step:
        raise AssertionError(f"{where}: unexpected transfer {turn.transfer}")
    if step.get("hangup"):
        assert any(a.kind == "hangup" for a in turn.actions), (
            f"{where}: expected a hangup; got {turn.actions}"
        )
    for key, value in (step.get("decision") or {}).items():
        assert turn.decision.get(key) == value, (
            f"{where}: decision {key} = {turn.decision.get(key)!r}, expected {value!r}"
        )
    if "flow" in step:
        assert (frame.flow if frame else None) == step["flow"], (
            f"{where}: active flow {frame and frame.flow!r}"
        )
    if "outcome" in step:
        assert turn.state.outcome == step["outcome"], f"{where}: outcome {turn.state.outcome!r}"
    for text in _list(step.get("transcript_lacks")):
        joined = " ".join(t["text"] for t in turn.state.transcript)
        assert text not in joined, f"{where}: transcript leaks {text!r}"


def _list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def load_conversations() -> list[tuple[str, dict[str, Any]]]:
    return [(p.stem, yaml.safe_load(p.read_text())) for p in sorted(CONVERSATIONS.glob("*.yaml"))]
