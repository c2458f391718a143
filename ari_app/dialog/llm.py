"""An optional LLM that proposes commands when the classifier finds nothing; the engine decides.

The LLM is any OpenAI-compatible chat endpoint with function calling (llama.cpp server, vLLM,
Ollama, a hosted API). It sees the caller's words, the flows (names, descriptions and the slots a
flow lets callers fill up front) and the open question, and may call ``start_flow``, ``set_slot``,
``cancel`` or ``clarify``. Nothing it says is spoken. Every proposal is checked here (unknown flow
or slot: dropped and logged) and again by the engine (slot values go through the slot's own
extraction and validation). After ``timeout`` seconds the engine carries on without it.

Never consulted while the open question is a sensitive slot: the caller's answer stays local.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from ari_app.dialog.answers import Rejected, from_text, validate
from ari_app.dialog.loader import FlowSet
from ari_app.dialog.settings import LlmSettings
from ari_app.dialog.state import ConversationState, Frame

if TYPE_CHECKING:
    from ari_app.dialog.engine import DialogEngine
    from ari_app.dialog.steps import TurnOut

log = structlog.get_logger(__name__)


# --- commands ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class StartFlow:
    flow: str


@dataclass(frozen=True)
class SetSlot:
    name: str
    value: str


@dataclass(frozen=True)
class Cancel:
    pass


@dataclass(frozen=True)
class Clarify:
    options: tuple[str, ...]


Command = StartFlow | SetSlot | Cancel | Clarify


@dataclass(frozen=True)
class OpenSlot:
    """The question the caller is answering, if any."""

    flow: str
    name: str
    label: str
    type: str


@dataclass
class Proposal:
    commands: list[Command] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # why each dropped call was dropped
    error: str | None = None
    ms: float = 0.0

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"commands": [_describe(c) for c in self.commands], "ms": self.ms}
        if self.ignored:
            out["ignored"] = self.ignored
        if self.error:
            out["error"] = self.error
        return out


def _describe(c: Command) -> str:
    if isinstance(c, StartFlow):
        return f"start_flow({c.flow})"
    if isinstance(c, SetSlot):
        return f"set_slot({c.name})"  # never the value: it may be personal
    if isinstance(c, Clarify):
        return f"clarify({', '.join(c.options)})"
    return "cancel()"


# --- what the LLM is told -----------------------------------------------------------------------


@dataclass(frozen=True)
class FlowInfo:
    description: str
    slots: dict[str, str]  # slots the LLM may fill from the opening sentence: name -> type


def catalogue(flowset: FlowSet) -> dict[str, FlowInfo]:
    """Flows a caller can ask for (those with examples), with their non-sensitive prefill slots."""
    return {
        name: FlowInfo(
            flow.description,
            {n: s.type for n, s in flow.slots.items() if s.prefill and not s.sensitive},
        )
        for name, flow in flowset.flows.items()
        if flow.examples
    }


SYSTEM = (
    "You route phone callers for an automated agent. Never answer the caller: only call tools.\n"
    "- The caller wants one of the flows below: call start_flow, plus set_slot for any listed slot "
    "whose value they already said.\n"
    "- There is an open question and the caller answered it in words the agent missed: call set_slot "
    "for that slot with the value in plain form (digits as digits, dates as YYYY-MM-DD).\n"
    "- The caller wants to stop what they are doing: call cancel.\n"
    "- It could be one of two flows: call clarify with both.\n"
    "- Nothing fits: call no tool.\n\nFlows:\n"
)


def _messages(text: str, flows: dict[str, FlowInfo], open_slot: OpenSlot | None) -> list[dict[str, Any]]:
    lines = []
    for name, info in flows.items():
        slots = ", ".join(f"{n} ({t})" for n, t in info.slots.items())
        lines.append(f"- {name}: {info.description}" + (f" [slots: {slots}]" if slots else ""))
    system = SYSTEM + "\n".join(lines)
    if open_slot is not None:
        system += (
            f"\n\nOpen question: {open_slot.label} (slot {open_slot.name}, type {open_slot.type}) "
            f"in flow {open_slot.flow}."
        )
    return [{"role": "system", "content": system}, {"role": "user", "content": text}]


def _tools(flows: dict[str, FlowInfo], open_slot: OpenSlot | None) -> list[dict[str, Any]]:
    names = sorted(flows)
    slot_names = sorted(
        {n for info in flows.values() for n in info.slots} | ({open_slot.name} if open_slot else set())
    )

    def fn(name: str, description: str, properties: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": name,
                "description": description,
                "parameters": {"type": "object", "properties": properties, "required": sorted(properties)},
            },
        }

    tools = [
        fn("start_flow", "Start the flow the caller asks for.", {"flow": {"type": "string", "enum": names}}),
        fn("cancel", "The caller wants to stop the current request.", {}),
        fn(
            "clarify",
            "Ask the caller which of two flows they mean.",
            {"options": {"type": "array", "items": {"type": "string", "enum": names}, "maxItems": 2}},
        ),
    ]
    if slot_names:
        tools.insert(
            1,
            fn(
                "set_slot",
                "Fill a slot with a value the caller said.",
                {"name": {"type": "string", "enum": slot_names}, "value": {"type": "string"}},
            ),
        )
    return tools


# --- the client -----------------------------------------------------------------------------------


class LlmCommander:
    """Asks the configured endpoint for commands; never raises, never waits past ``timeout``."""

    def __init__(self, settings: LlmSettings, client: Any = None) -> None:
        if settings.base_url is None and client is None:
            raise ValueError("dialog.llm.base_url is not set")
        self.settings = settings
        if client is None:
            import openai

            client = openai.AsyncOpenAI(
                base_url=settings.base_url,
                api_key=settings.api_key.get_secret_value() or "not-needed",
                timeout=settings.timeout + 1.0,
                max_retries=0,
            )
        self._client = client

    async def close(self) -> None:
        await self._client.close()

    async def propose(
        self, text: str, flows: dict[str, FlowInfo], open_slot: OpenSlot | None = None
    ) -> Proposal:
        started = time.perf_counter()
        try:
            reply = await asyncio.wait_for(
                self._client.chat.completions.create(
                    model=self.settings.model,
                    messages=_messages(text, flows, open_slot),
                    tools=_tools(flows, open_slot),
                    tool_choice="auto",
                    temperature=0,
                    max_tokens=self.settings.max_tokens,
                ),
                timeout=self.settings.timeout,
            )
            proposal = parse_reply(reply, flows, open_slot)
        except TimeoutError:
            proposal = Proposal(error=f"no answer within {self.settings.timeout:g} s")
        except Exception as e:  # the LLM is optional: any failure means "no proposal"
            proposal = Proposal(error=f"{type(e).__name__}: {e}"[:300])
        proposal.ms = round((time.perf_counter() - started) * 1000, 1)
        if proposal.error:
            log.warning("llm.failed", error=proposal.error, ms=proposal.ms)
        else:
            log.info("llm.proposal", **proposal.summary())
        return proposal


def parse_reply(reply: Any, flows: dict[str, FlowInfo], open_slot: OpenSlot | None) -> Proposal:
    """Strict: only known tools, known flows, known slots, string values; the rest is dropped."""
    out = Proposal()
    choices = getattr(reply, "choices", None) or []
    message = getattr(choices[0], "message", None) if choices else None
    for call in getattr(message, "tool_calls", None) or []:
        fn = getattr(call, "function", None)
        name = getattr(fn, "name", None)
        try:
            args = json.loads(getattr(fn, "arguments", None) or "{}")
        except (TypeError, ValueError):
            out.ignored.append(f"{name}: arguments are not JSON")
            continue
        if not isinstance(args, dict):
            out.ignored.append(f"{name}: arguments are not an object")
            continue
        cmd, why = _command(str(name), args, flows, open_slot)
        if cmd is not None:
            out.commands.append(cmd)
        else:
            out.ignored.append(why)
    for why in out.ignored:
        log.warning("llm.ignored", reason=why)
    return out


def _command(
    name: str, args: dict[str, Any], flows: dict[str, FlowInfo], open_slot: OpenSlot | None
) -> tuple[Command | None, str]:
    if name == "start_flow":
        flow = args.get("flow")
        if flow not in flows:
            return None, f"start_flow: unknown flow {str(flow)[:60]!r}"
        return StartFlow(flow), ""
    if name == "set_slot":
        slot, value = args.get("name"), args.get("value")
        known = {n for info in flows.values() for n in info.slots} | (
            {open_slot.name} if open_slot else set()
        )
        if slot not in known:
            return None, f"set_slot: unknown slot {str(slot)[:60]!r}"
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value.strip() or len(value) > 200:
            return None, f"set_slot: bad value for {slot!r}"
        return SetSlot(slot, value.strip()), ""
    if name == "cancel":
        return Cancel(), ""
    if name == "clarify":
        options = args.get("options")
        if not isinstance(options, list) or not options:
            return None, "clarify: no options"
        unknown = [str(o)[:60] for o in options if o not in flows]
        if unknown:
            return None, f"clarify: unknown flow(s) {unknown}"
        return Clarify(tuple(dict.fromkeys(options))[:2]), ""
    return None, f"unknown tool {name[:60]!r}"


# --- the engine side ------------------------------------------------------------------------------


def open_slot_of(engine: DialogEngine, state: ConversationState) -> OpenSlot | None:
    frame = state.frame
    if frame is None or frame.awaiting != "slot" or not frame.slot:
        return None
    slot = engine.flow(frame).slots[frame.slot]
    return OpenSlot(frame.flow, frame.slot, slot.label or frame.slot.replace("_", " "), slot.type)


def slot_value(engine: DialogEngine, frame: Frame, name: str, raw: str) -> Any:
    """The LLM's value through the slot's own extraction and validation; None if it fails."""
    slot = engine.flowset.flows[frame.flow].slots[name]
    choices = engine.choices(slot, frame)
    ent = from_text(name, slot, raw, engine.nlu, choices, engine.now())
    if ent is None:
        return None
    try:
        return validate(slot, ent.value, choices)
    except Rejected:
        return None


async def apply_commands(engine: DialogEngine, state: ConversationState, text: str, out: TurnOut) -> bool:
    """Ask the LLM and carry out what survives the checks. False: nothing done (normal no-match)."""
    open_slot = open_slot_of(engine, state)
    if open_slot is not None and engine.flowset.flows[open_slot.flow].slots[open_slot.name].sensitive:
        return False
    assert engine.llm is not None
    flows = catalogue(engine.flowset)
    proposal = await engine.llm.propose(text, flows, open_slot)
    note = proposal.summary()
    out.note("llm", note)
    cmds = proposal.commands
    starts = [c.flow for c in cmds if isinstance(c, StartFlow)]
    sets = [c for c in cmds if isinstance(c, SetSlot)]
    running = {f.flow for f in state.frames}

    def drop(why: str) -> None:
        note.setdefault("ignored", []).append(why)
        log.warning("llm.ignored", reason=why)

    if any(isinstance(c, Cancel) for c in cmds) and not starts:
        if state.frame is not None:
            note["applied"] = "cancel"
            await engine._cancel(state, out)
            return True
        drop("cancel: nothing to cancel")
    for flow in starts:
        if flow in running:
            drop(f"start_flow: {flow} is already running")
            continue
        probe = Frame(flow=flow)
        slots: dict[str, Any] = {}
        for s in sets:
            if s.name not in flows[flow].slots:
                drop(f"set_slot: {s.name!r} is not a slot {flow} may take up front")
            elif (value := slot_value(engine, probe, s.name, s.value)) is None:
                drop(f"set_slot: value for {s.name!r} rejected by the slot")
            else:
                slots[s.name] = value
        note["applied"] = f"start_flow({flow})"
        out.note("pattern", "llm")
        out.note("intent", flow)
        if slots:
            out.note("filled", list(slots))
        state.no_match_streak = state.low_confidence_streak = 0
        await engine.start_flow(state, flow, out, text, slots=slots)
        return True
    frame = state.frame
    if open_slot is not None and frame is not None:
        filled = False
        for s in sets:
            if s.name != open_slot.name:
                drop(f"set_slot: {s.name!r} is not the open question")
            elif (value := slot_value(engine, frame, s.name, s.value)) is None:
                drop(f"set_slot: value for {s.name!r} rejected by the slot")
            else:
                frame.slots[s.name] = value
                filled = True
        if filled:
            note["applied"] = f"set_slot({open_slot.name})"
            out.note("pattern", "llm")
            out.note("filled", [open_slot.name])
            state.no_match_streak = state.low_confidence_streak = 0
            await engine.run(state, out)
            return True
    elif sets:
        drop("set_slot: no flow started and no question open")
    clarify = next((c for c in cmds if isinstance(c, Clarify)), None)
    if clarify is not None:
        if frame is not None and frame.awaiting:
            drop("clarify: a question is open")
        else:
            note["applied"] = f"clarify({', '.join(clarify.options)})"
            engine._clarify(state, list(clarify.options), out)
            return True
    return False
