"""Running a flow's steps until the caller must speak (or the flow ends), and what happens
between flows: resuming an interrupted one, the multi-intent queue, "anything else?".

Tool steps send an idempotency key (``tools.idempotency_key``) built from the call, the flow, the
step, the turn its frame started (kept in the frame's results under ``FRAME_STARTED``, so it is
saved and resumed with the state) and the arguments: a call taken over by another instance that
re-asks the question and hears the same answer sends the same key, and the backend applies the
change once. ``TurnOut.on_tool_event`` receives the tool's journal events."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ari_app.dialog.answers import Rejected, from_text, is_birth_date, keys_a_date, validate
from ari_app.dialog.filling import (
    KEYED_DATE_DIGITS,
    expected_digits,
    fill_given_slots,
    grouped,
    keypad_hint,
    near_miss_digits,
    near_miss_prompt,
)
from ari_app.dialog.flows import BranchStep, CollectStep, Condition, Flow, Goto, Slot
from ari_app.dialog.graph import EXIT, following
from ari_app.dialog.loader import FlowSet
from ari_app.dialog.policy import EscalationPolicy
from ari_app.dialog.redact import mask, redact, redact_slots
from ari_app.dialog.state import Action, CollectDigits, ConversationState, Frame, Hangup, Listen, Say
from ari_app.dialog.templates import SPOKEN_FORMATS, TemplateError, render, render_value
from ari_app.dialog.tools import ToolClient, ToolJournal, ToolResult, idempotency_key

OnAction = Callable[[Any], Awaitable[None] | None]
MAX_STEPS_PER_TURN = 60  # a guard: the loader rejects loops with no exit, this catches the rest
MAX_FAILED_TRANSFERS_ASKED = 2  # hand-overs tried when the caller asks, after failures
NO_AGENTS_GOODBYE = "I'm sorry we couldn't finish this today. Please call us back a little later. Goodbye."
YES_NO_KEYS = "You can also press 1 for yes, or 2 for no."
ANYTHING_ELSE = "Is there anything else I can help you with?"
DATE_KEYS_TIMEOUT_S = 4.0  # a keyed date ends with # or this long after the last key
# A frame's results entry: the turn it started in (not a name templates can write, nor a tool's).
FRAME_STARTED = "@started_turn"


@dataclass
class TurnOut:
    """What one turn produces, gathered while the engine works."""

    actions: list[Action] = field(default_factory=list)
    interim: list[Action] = field(default_factory=list)
    decision: dict[str, Any] = field(default_factory=dict)
    on_action: OnAction | None = None
    on_tool_event: ToolJournal | None = None  # "tool_started" / "tool_finished", for the call's events
    steps_run: int = 0

    def say(self, text: str, sensitive: bool = False) -> None:
        if text:
            self.actions.append(Say(text, sensitive=sensitive))

    def note(self, key: str, value: Any) -> None:
        self.decision[key] = value

    async def emit_now(self, action: Action) -> None:
        """An action the caller must hear before the turn completes (the holding phrase)."""
        self.interim.append(action)
        if self.on_action is not None:
            result = self.on_action(action)
            if asyncio.iscoroutine(result):
                await result


class StepRunner:
    flowset: FlowSet
    policy: EscalationPolicy
    tool_client: ToolClient | None
    nlu: Any
    now: Callable[[], datetime]

    # --- small helpers --------------------------------------------------------------------------

    def flow(self, frame: Frame) -> Flow:
        return self.flowset.flows[frame.flow]

    def label(self, flow_name: str) -> str:
        flow = self.flowset.flows[flow_name]
        return flow.label or flow.description[:1].lower() + flow.description[1:]

    def sensitive(self, state: ConversationState) -> set[str]:
        return {n for f in state.frames for n, s in self.flowset.flows[f.flow].slots.items() if s.sensitive}

    def secrets(self, state: ConversationState) -> list[str]:
        out = []
        for f in state.frames:
            for name, slot in self.flowset.flows[f.flow].slots.items():
                if slot.sensitive and f.slots.get(name) is not None:
                    out.append(str(f.slots[name]))
        return out

    def values(self, state: ConversationState, frame: Frame) -> dict[str, Any]:
        return {**frame.results, **frame.slots, "caller": {"number": state.caller_number or ""}}

    def render_masked(self, text: str, state: ConversationState, frame: Frame, out: TurnOut) -> str:
        """As ``render``, with every sensitive slot's value masked (for what leaves the call)."""
        hidden = self.sensitive(state)
        values = {
            k: mask(v) if k in hidden and v is not None else v for k, v in self.values(state, frame).items()
        }
        try:
            return render(text, values)
        except TemplateError as e:
            out.decision.setdefault("errors", []).append(str(e))
            return ""

    def render(self, text: str, state: ConversationState, frame: Frame, out: TurnOut) -> str:
        try:
            return render(text, self.values(state, frame))
        except TemplateError as e:  # a result missing a field: keep talking, record why
            out.decision.setdefault("errors", []).append(str(e))
            return ""

    def choices(self, slot: Slot, frame: Frame) -> list[str] | None:
        if slot.choices_from:
            value = frame.result_at(slot.choices_from)
            return [str(v) for v in value] if isinstance(value, list) else []
        if slot.validation and slot.validation.choices:
            return slot.validation.choices
        if slot.dtmf and slot.dtmf.menu:
            return list(dict.fromkeys(slot.dtmf.menu.values()))
        return None

    def transfer(self, out: TurnOut, state: ConversationState, reason: str, **kw: Any) -> None:
        quiet = kw.pop("quiet", False)
        # A hand-over already failed on this call: trying again for our own reasons (silence, not
        # understood) would loop the caller through the same apology forever. Say goodbye instead;
        # a caller who asks for a person again gets one more try.
        if state.transfers_failed >= (MAX_FAILED_TRANSFERS_ASKED if reason == "caller_request" else 1):
            out.say(NO_AGENTS_GOODBYE)
            out.actions.append(Hangup("no_agents"))
            state.ended = True
            out.note("transfer_skipped", f"{reason}: {state.transfers_failed} failed already")
            return
        labels = {name: self.label(name) for name in self.flowset.flows}
        t = self.policy.transfer(reason, state, sensitive=self.sensitive(state), labels=labels, **kw)
        if not quiet:
            out.say("Let me connect you with someone who can help.")
        out.actions.append(t)
        out.note("transfer", reason)

    # --- asking -------------------------------------------------------------------------------

    def ask_slot(
        self, state: ConversationState, frame: Frame, name: str, out: TurnOut, attempt: int = 0
    ) -> None:
        slot = self.flow(frame).slots[name]
        frame.awaiting, frame.slot = "slot", name
        step = self.flow(frame).steps[frame.step] if frame.step < len(self.flow(frame).steps) else None
        here = step.prompt if isinstance(step, CollectStep) and step.collect == name else None
        prompts = [here or slot.prompt, *slot.reprompts]
        text = self.render(prompts[min(attempt, len(prompts) - 1)], state, frame, out)
        if attempt == 0 and name in frame.near_miss:  # heard up front, a digit off: say what we got
            text = near_miss_prompt(slot, frame.near_miss.pop(name))
        elif attempt >= len(prompts):  # out of reprompts: change strategy, never the same words twice
            lead = ("", "Let's try once more.", "One last try.")[min(attempt - len(prompts), 2)]
            hint = keypad_hint(name, slot)
            text = (
                " ".join(t for t in (lead, text, hint) if t)
                if hint
                else f"{lead or 'Let me ask again.'} {text}"
            )
        out.say(text)
        self.listen_for_keys(slot, out)
        choices = self.choices(slot, frame) or []
        spoken = SPOKEN_FORMATS["time"] if slot.type == "time" else str
        # A birth date is open-ended (no weekday names to listen for); a new date is not.
        kind = "date_of_birth" if slot.type == "date" and is_birth_date(name, slot) else slot.type
        out.actions.append(Listen(kind, expected_digits(slot), tuple(spoken(c) for c in choices)))

    def listen_for_keys(self, slot: Slot, out: TurnOut) -> None:
        """Tell the listener how a key entry for ``slot`` ends (say-or-press)."""
        if slot.dtmf and slot.dtmf.allowed:
            max_len = slot.dtmf.length or (1 if slot.dtmf.menu else slot.dtmf.max_length)
            out.actions.append(CollectDigits(max_len, None if slot.dtmf.length else slot.dtmf.terminator,
                                             slot.dtmf.timeout))  # fmt: skip
        elif keys_a_date(slot):  # no dtmf settings: a date can still be keyed (keypad_hint)
            out.actions.append(CollectDigits(KEYED_DATE_DIGITS, "#", DATE_KEYS_TIMEOUT_S))

    def menu_prompt(self, step: Any, state: ConversationState, frame: Frame, out: TurnOut) -> str:
        if step.menu.prompt:
            return self.render(step.menu.prompt, state, frame, out)
        return ", ".join(f"press {d} for {o.label}" for d, o in step.menu.options.items()).capitalize() + "."

    def reask(self, state: ConversationState, out: TurnOut, attempt: int = 0) -> None:
        """Ask the open question again (after a digression, a repair, or a failed answer)."""
        frame = state.frame
        if frame is None and state.awaiting == "anything_else":
            # Still the closing question: a "nope" after the reprompt must still mean goodbye.
            out.say(ANYTHING_ELSE if attempt == 0 else f"{ANYTHING_ELSE} If not, just say no.")
            return
        if frame is None or frame.awaiting is None:
            out.say("What can I help you with?")
            state.awaiting = "intent"
            return
        step = self.flow(frame).steps[frame.step]
        if frame.awaiting == "confirm_value" and frame.slot and frame.slot in frame.tentative:
            out.say(f"I have {grouped(frame.tentative[frame.slot])}. Is that right?")
            out.actions.append(Listen("yes_no"))
        elif frame.awaiting in ("slot", "confirm_value") and frame.slot:
            frame.awaiting = "slot"
            self.ask_slot(state, frame, frame.slot, out, attempt)
        elif frame.awaiting == "confirm":
            # A yes that did not come through (noise turns "yes" into "what?"): the keypad too.
            keys = f" {YES_NO_KEYS}" if attempt >= 1 else ""
            out.say(self.render(step.confirm, state, frame, out) + keys)
            out.actions += [CollectDigits(1, None, 5.0), Listen("yes_no", choices=self.change_choices(frame))]
        elif frame.awaiting == "confirm_which":
            out.say(self.which_prompt(frame))
        elif frame.awaiting == "menu":
            out.say(self.menu_prompt(step, state, frame, out))
            out.actions.append(CollectDigits(1, None, 5.0))

    def which_prompt(self, frame: Frame) -> str:
        flow = self.flow(frame)
        names = [flow.slots[s].label or s.replace("_", " ") for s in self.changeable(frame)]
        listed = ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else names[0]
        return f"What would you like to change: {listed}?"

    def change_choices(self, frame: Frame) -> tuple[str, ...]:
        """The offered values of the slots a confirmation may change, as they were spoken."""
        flow, spoken = self.flow(frame), SPOKEN_FORMATS["time"]
        said: list[str] = []
        for name in self.changeable(frame):
            slot = flow.slots[name]
            said += [spoken(c) if slot.type == "time" else str(c) for c in self.choices(slot, frame) or []]
        return tuple(dict.fromkeys(said))

    def changeable(self, frame: Frame) -> list[str]:
        flow = self.flow(frame)
        step = flow.steps[frame.step]
        if step.kind == "confirm" and step.change:
            return list(step.change)
        return [s.collect for s in flow.steps[: frame.step] if s.kind == "collect"]

    # --- running --------------------------------------------------------------------------------

    async def start_flow(
        self,
        state: ConversationState,
        name: str,
        out: TurnOut,
        text: str | None = None,
        slots: dict[str, Any] | None = None,
    ) -> None:
        frame = Frame(flow=name, slots=dict(slots or {}), results={FRAME_STARTED: state.turns})
        state.frames.append(frame)
        state.awaiting = None
        out.note("flow", name)
        if text:  # every slot the opening sentence already gives: its question is skipped
            for slot_name, slot in self.flowset.flows[name].slots.items():
                if slot.prefill and slot.type != "text" and slot_name not in frame.slots:
                    ent = from_text(slot_name, slot, text, self.nlu, self.choices(slot, frame), self.now())
                    if ent is not None:
                        try:
                            frame.slots[slot_name] = validate(slot, ent.value, self.choices(slot, frame))
                        except Rejected:
                            pass
            given = fill_given_slots(
                self.flowset.flows[name], frame, text, self.nlu, self.choices, self.now()
            )
            frame.near_miss = near_miss_digits(self.flowset.flows[name], frame, text, self.nlu, self.now())
            if given:
                sensitive = {n for n, s in self.flowset.flows[name].slots.items() if s.sensitive}
                out.note("prefilled", {n: "****" if n in sensitive else v for n, v in given.items()})
        await self.run(state, out)

    def goto(self, frame: Frame, target: str | None) -> int:
        if target is None or target == "end":
            return EXIT
        return self.flowset.step_index(frame.flow, target)

    async def run(self, state: ConversationState, out: TurnOut) -> None:
        """Execute steps from the active frame's position until a question is asked or the flow exits."""
        while (frame := state.frame) is not None:
            flow = self.flow(frame)
            if frame.step == EXIT or frame.step >= len(flow.steps):
                await self.finish_flow(state, out)
                return
            out.steps_run += 1
            if out.steps_run > MAX_STEPS_PER_TURN:
                self.transfer(out, state, "flow", detail="the flow looped without asking anything")
                return
            step = flow.steps[frame.step]
            ids = self.flowset.step_ids[frame.flow]
            out.note("step", step.id or frame.step)
            if step.outcome:  # what a campaign reports for this call (the last one reached wins)
                state.outcome = step.outcome
            frame.awaiting = None
            if step.kind == "collect":
                slot = flow.slots[step.collect]
                value = frame.slots.get(step.collect)
                still_valid = value is not None
                if still_valid:
                    try:
                        validate(slot, value, self.choices(slot, frame))
                    except Rejected:  # e.g. a time that a corrected date no longer offers
                        frame.slots.pop(step.collect)
                        still_valid = False
                if still_valid and not (step.ask_again and step.collect not in frame.asked):
                    frame.step = following(flow, ids, frame.step)
                    continue
                frame.asked.append(step.collect)
                frame.retries = 0
                self.ask_slot(state, frame, step.collect, out)
                return
            if step.kind == "say":
                out.say(
                    self.render(step.say, state, frame, out), sensitive=self._uses_sensitive(step.say, flow)
                )
                for name in step.reset:
                    frame.slots.pop(name, None)
                frame.step = following(flow, ids, frame.step)
            elif step.kind == "confirm":
                frame.awaiting, frame.retries = "confirm", 0
                out.say(
                    self.render(step.confirm, state, frame, out), self._uses_sensitive(step.confirm, flow)
                )
                # Keys 1/2 are offered on a retry; "No, make it <an offered value>" is listened for.
                out.actions += [
                    CollectDigits(1, None, 5.0),
                    Listen("yes_no", choices=self.change_choices(frame)),
                ]
                return
            elif step.kind == "menu":
                frame.awaiting, frame.retries = "menu", 0
                out.say(self.menu_prompt(step, state, frame, out))
                out.actions.append(CollectDigits(1, None, 5.0))
                return
            elif step.kind == "branch":
                frame.step = self._branch(step, frame, flow, ids)
            elif step.kind == "call":
                if not await self._call(state, frame, step, out):
                    return
            elif step.kind == "transfer":
                spec = step.transfer
                # The summary goes to a SIP header, the whisper and Redis: sensitive values masked.
                summary = self.render_masked(spec.summary, state, frame, out) if spec.summary else None
                self.transfer(
                    out, state, spec.reason, queue=spec.queue, endpoint=spec.endpoint, summary=summary
                )
                return
            elif step.kind == "end":
                if step.end:
                    out.say(self.render(step.end, state, frame, out))
                if step.hangup:
                    out.actions.append(Hangup("flow_end"))
                    state.ended = True
                    return
                frame.step = EXIT

    def _uses_sensitive(self, template: str, flow: Flow) -> bool:
        return any("{" + n in template for n, s in flow.slots.items() if s.sensitive)

    def _branch(self, step: BranchStep, frame: Frame, flow: Flow, ids: dict[str, int]) -> int:
        for cond in step.branch:
            if _holds(cond, frame):
                return ids[cond.goto]
        if step.else_:
            return self.goto(frame, step.else_)
        return following(flow, ids, frame.step)

    async def _call(self, state: ConversationState, frame: Frame, step: Any, out: TurnOut) -> bool:
        """Run a tool step; False when the turn must stop here (transfer, end)."""
        flow, ids = self.flow(frame), self.flowset.step_ids[frame.flow]
        tool = self.flowset.tools[step.call]
        name = step.result or step.call
        try:
            args = render_value(step.args, self.values(state, frame))
        except TemplateError as e:
            res = ToolResult(False, {}, f"{step.call}: {e}")
        else:
            key = idempotency_key(state.call_id, frame.flow, step.id or frame.step, step.call,
                                  frame.results.get(FRAME_STARTED), args)  # fmt: skip
            res = await self._call_with_hold(step.call, tool, args, out, key)
        secrets = self.secrets(state)
        out.decision.setdefault("tools", []).append(
            {
                "tool": step.call,
                "ok": res.ok,
                "status": res.status,
                "attempts": res.attempts,
                "ms": round(res.elapsed_ms, 1),
                "error": redact(res.error, secrets),
            }
        )
        if res.ok:
            frame.results[name] = res.data
            frame.step = following(flow, ids, frame.step)
            return True
        frame.results[name] = {}
        action = step.on_failure or tool.fallback.then
        out.say(self.render(tool.fallback.say, state, frame, out))
        if action == "transfer":
            self.transfer(out, state, "tool_failure", detail=redact(res.error, secrets), quiet=True)
            return False
        if action == "end":
            frame.step = EXIT
        elif isinstance(action, Goto):
            frame.step = ids[action.goto]
        else:
            frame.step = following(flow, ids, frame.step)
        return True

    async def _call_with_hold(
        self, name: str, tool: Any, args: dict[str, Any], out: TurnOut, key: str
    ) -> ToolResult:
        if self.tool_client is None:
            return ToolResult(False, {}, f"{name}: no tool client configured")
        call = self.tool_client.call(name, tool, args, idempotency_key=key, journal=out.on_tool_event)
        task = asyncio.ensure_future(call)
        if tool.holding_phrase:
            done, _ = await asyncio.wait({task}, timeout=tool.hold_after)
            if not done:
                await out.emit_now(Say(tool.holding_phrase, interruptible=False))
        return await task

    async def finish_flow(self, state: ConversationState, out: TurnOut) -> None:
        done = state.frames.pop()
        out.note("finished", done.flow)
        if state.queued_flows:
            nxt = state.queued_flows.pop(0)
            out.say(f"Now, about {self.label(nxt)}.")
            await self.start_flow(state, nxt, out)
        elif state.frame is not None:
            out.say(f"Now, back to {self.label(state.frame.flow)}.")
            self.reask(state, out)
        else:
            state.awaiting = "anything_else"
            out.say(ANYTHING_ELSE)

    def slot_log(self, state: ConversationState) -> dict[str, Any]:
        frame = state.frame
        return redact_slots(frame.slots, self.sensitive(state)) if frame else {}


def _lookup(frame: Frame, path: str) -> Any:
    root, *rest = path.split(".")
    value: Any = frame.slots.get(root, frame.results.get(root))
    for key in rest:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _holds(cond: Condition, frame: Frame) -> bool:
    value = _lookup(frame, cond.when)
    checks = []
    if cond.equals is not None:
        checks.append(value == cond.equals)
    if cond.not_equals is not None:
        checks.append(value != cond.not_equals)
    if cond.in_ is not None:
        checks.append(value in cond.in_)
    if cond.exists is not None:
        checks.append((value is not None) == cond.exists)
    if cond.empty is not None:
        checks.append((not value) == cond.empty)
    for bound, op in ((cond.gt, float.__gt__), (cond.lt, float.__lt__)):
        if bound is not None:
            try:
                checks.append(op(float(value), float(bound)))
            except (TypeError, ValueError):
                checks.append(False)
    return bool(checks) and all(checks)


def elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
