"""The dialogue engine: one caller turn in, the agent's actions out. No I/O except tool webhooks.

Holding phrases: ``handle(state, input, on_action=cb)`` calls ``cb(Say(...))`` (sync or async)
the moment a tool has been running for its ``hold_after`` seconds without an answer, so the
caller hears "one moment while I check that" while the turn is still being worked out. Those
actions are also listed in ``Turn.interim``; ``Turn.actions`` holds the rest, in order.

Tool journal: ``handle(..., on_tool_event=cb)`` awaits ``cb("tool_started", {tool, key})`` before
a webhook is sent and ``cb("tool_finished", {tool, key, ok, status, attempts})`` after it, for the
call's event stream (see ``tools.py``).

The state passed in is never mutated: each turn works on a copy and returns it in the Turn,
ready to be stored (``state.to_dict()``) and resumed anywhere (``ConversationState.from_dict``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ari_app.dialog.answers import Rejected, Understanding, from_text, match_choice, validate
from ari_app.dialog.filling import (
    Heard,
    fill_given_slots,
    grouped,
    moved_date,
    read_keyed,
    read_spoken,
    unsure_number,
)
from ari_app.dialog.flows import Goto, PatternOverride
from ari_app.dialog.graph import EXIT, following
from ari_app.dialog.loader import FlowSet
from ari_app.dialog.policy import EscalationPolicy, PolicySettings
from ari_app.dialog.redact import mask, redact
from ari_app.dialog.repair import CHANGE_REQUEST, Cues, detect, done_for_now
from ari_app.dialog.routing import IntentRouter
from ari_app.dialog.state import CallContext, CallerInput, ConversationState, Frame, Hangup, Listen, Say, Turn
from ari_app.dialog.steps import ANYTHING_ELSE, OnAction, TurnOut, elapsed_ms
from ari_app.dialog.templates import SPOKEN_FORMATS
from ari_app.dialog.tools import ToolClient, ToolJournal

if TYPE_CHECKING:
    from ari_app.dialog.llm import LlmCommander

NO_CUES = Cues(False, False, False, False)


class DialogEngine(IntentRouter):
    def __init__(
        self,
        flowset: FlowSet,
        understanding: Understanding,
        tool_client: ToolClient | None = None,
        policy_settings: PolicySettings | None = None,
        *,
        llm: LlmCommander | None = None,
        now: Callable[[], datetime] = datetime.now,
    ) -> None:
        self.flowset = flowset
        self.nlu = understanding
        self.tool_client = tool_client
        self.settings = policy_settings or PolicySettings()
        self.policy = EscalationPolicy(self.settings)
        self.llm = llm  # optional: consulted only where the engine would otherwise say no-match
        self.now = now
        self._parses: dict[str, Any] = {}  # small text -> Parse cache (safe across calls)
        examples = {name: list(f.examples) for name, f in flowset.flows.items() if f.examples}
        negatives = [n for f in flowset.flows.values() for n in f.negative_examples]
        understanding.fit(examples, negatives)

    # --- public API -----------------------------------------------------------------------------

    def start(self, ctx: CallContext) -> Turn:
        """The greeting (and the entry flow's first question, e.g. a DTMF menu); for a call we
        placed, its flow's opening instead, with the slots we already know."""
        state = ConversationState(call_id=ctx.call_id, caller_number=ctx.caller_number, awaiting="intent")
        out = TurnOut()
        flow = ctx.flow or self.flowset.entry_flow
        if ctx.flow is None:
            out.say(self.flowset.greeting)
        if flow:
            coro = self.start_flow(state, flow, out, slots=ctx.slots if ctx.flow else None)
            try:  # the entry flow must ask before any tool call, so this never suspends
                coro.send(None)
            except StopIteration:
                pass
            else:
                coro.close()
                raise RuntimeError(f"flow {flow!r} must ask the caller before calling a tool")
        return self._finish(state, out, time.perf_counter())

    async def handle(
        self,
        state: ConversationState,
        caller: CallerInput,
        on_action: OnAction | None = None,
        on_tool_event: ToolJournal | None = None,
    ) -> Turn:
        started = time.perf_counter()
        state = ConversationState.from_dict(state.to_dict())
        out = TurnOut(on_action=on_action, on_tool_event=on_tool_event)
        state.turns += 1
        if state.ended:
            out.note("ignored", "conversation already ended")
            return self._finish(state, out, started)
        self._log_caller(state, caller, out)
        await self._dispatch(state, caller, out)
        return self._finish(state, out, started)

    def transfer_returned(self, state: ConversationState) -> ConversationState:
        """A transfer the engine asked for did not connect: the caller is back with us."""
        state = ConversationState.from_dict(state.to_dict())
        state.ended = False
        state.transfers_failed += 1
        # The apology asked a new question: the caller gets the whole ladder again before goodbye.
        state.no_input_streak = state.no_match_streak = state.low_confidence_streak = 0
        return state

    # --- dispatch -------------------------------------------------------------------------------

    async def _dispatch(self, state: ConversationState, caller: CallerInput, out: TurnOut) -> None:
        text, digits = (caller.text or "").strip(), (caller.digits or "").strip()
        if caller.no_input or (not text and not digits):
            return self._silence(state, out)
        state.no_input_streak = 0
        confidence = caller.asr_confidence
        if text and caller.picked and self._pick_answers(state, text, caller.picked):
            # A yes or no the audio was scored for ("Yes please" written "Please"), or the change
            # asked for with the offered value scored in ("No, make it free, party." -> "No, make
            # it 3:30 PM"): recognition's closed set carries its own evidence.
            out.note("heard_as", caller.picked)
            text, confidence = caller.picked, 1.0
        unsure, state.unsure_answer = state.unsure_answer, None
        if (
            text
            and confidence < self.settings.asr_confidence_min
            and not any(self._fits_open_question(state, t) for t in (text, *caller.alternatives) if t)
            and not (unsure is not None and self._unsure_yes_no(state, text) == unsure)
        ):
            state.unsure_answer = self._unsure_yes_no(state, text)
            state.low_confidence_streak += 1
            out.note("pattern", "low_asr_confidence")
            if state.low_confidence_streak >= self.settings.max_low_confidence:
                return self.transfer(out, state, "low_confidence")
            if state.frame is None and state.low_confidence_streak >= 2:  # the request again: menu
                if self.offer_menu(state, out, "Sorry, I'm having trouble hearing you."):
                    return
            out.say("Sorry, I didn't quite catch that.")
            # Each unclear answer gets the next reprompt (after this question's other failures
            # too): never the same words twice.
            tried = state.frame.retries if state.frame is not None else 0
            return self.reask(state, out, attempt=state.low_confidence_streak + tried)
        if self.policy.is_angry(text):
            out.note("pattern", "anger")
            return self.transfer(out, state, "anger")
        if self.policy.wants_person(text) or (digits == "0" and not self._accepts_zero(state)):
            out.note("pattern", "human_request")
            return self.transfer(out, state, "caller_request")
        cues = detect(text) if text else NO_CUES
        if (digits == "*" or cues.repeat) and self._enabled(state, "repeat"):
            state.repeat_streak += 1
            if state.repeat_streak <= MAX_REPEATS:
                out.note("pattern", "repeat")
                out.say(state.last_prompt or "How can I help you?")
                return
            # "What?" again and again: on a noisy line that is often our mishearing of the answer
            # ("yes" -> "What?"). Repeating forever traps the caller: treat it as not understood,
            # so the ladder changes strategy (keypad, menu, then a person).
            out.note("pattern", "repeat_limit")
        else:
            state.repeat_streak = 0
        if cues.cancel and state.frame is not None and self._enabled(state, "cancel"):
            return await self._cancel(state, out)
        frame = state.frame
        if frame is not None and frame.awaiting:
            if frame.awaiting == "slot":
                return await self._slot_answer(
                    state, frame, text, digits, cues, out, caller.alternatives, confidence
                )
            return await self._answer(state, frame, text, digits, cues, out)
        if state.awaiting == "clarify":
            return await self._clarified(state, text, digits, out)
        if state.awaiting == "anything_else":
            return await self._anything_else(state, text, digits, out)
        await self._route(state, text, digits, out)

    def _silence(self, state: ConversationState, out: TurnOut) -> None:
        state.no_input_streak += 1
        out.note("pattern", "no_input")
        if state.no_input_streak >= self.settings.max_no_input:
            if state.frame is None and state.awaiting == "anything_else":  # served, then quiet
                out.say("Thanks for calling. Goodbye.")
                out.actions.append(Hangup("caller_done"))
                state.ended = True
                return None
            flow = self.flow(state.frame) if state.frame else None
            if flow is not None and flow.silence_end:  # a silent callee: nobody asked for a person
                out.say(flow.silence_end)
                out.actions.append(Hangup("no_input"))
                state.outcome, state.ended = "no_response", True
                return None
            return self.transfer(out, state, "no_input")
        out.say("Sorry, I didn't hear anything." if state.no_input_streak == 1 else "Are you still there?")
        self.reask(state, out, attempt=state.no_input_streak)

    def _fits_open_question(self, state: ConversationState, text: str) -> bool:
        """A low-confidence transcript that answers the open question is trusted: agreement with
        what we expect is a better confidence at 8 kHz than Whisper's log-probability. Asked for
        each hypothesis: a closed-set pick ("Wednesday" for "1G.") carries its own evidence
        (speech/closed_set.py).

        At a yes/no question only a no is trusted this way ("No, make it three thirty" came back
        as "No, make it free, Darkey." at 0.2): a wrong no costs a question (what to change), a
        wrong yes books the wrong thing. "Anything else?" takes either reading, and "that's all".
        """
        frame = state.frame
        if frame is None:
            return state.awaiting == "anything_else" and (
                done_for_now(text) or self._yes_no(text) is not None
            )
        if self._asks_yes_no(frame):
            return self._yes_no(text) == "no"
        if frame.awaiting != "slot" or not frame.slot:
            return False
        slot = self.flow(frame).slots[frame.slot]
        if slot.type == "text":
            return False
        ent = from_text(frame.slot, slot, text, self.nlu, self.choices(slot, frame), self.now())
        try:
            return ent is not None and validate(slot, ent.value, self.choices(slot, frame)) is not None
        except Rejected:
            return False

    def _pick_answers(self, state: ConversationState, text: str, picked: str) -> bool:
        """Does recognition's closed-set pick answer the open yes/no question where the transcript
        did not, or the same way with more (the value asked for)?"""
        reading = self._unsure_yes_no(state, picked)
        if reading is None:  # a change asked for at a confirmation ("or make it 3:30 PM")
            frame = state.frame
            return frame is not None and frame.awaiting == "confirm" and bool(CHANGE_REQUEST.search(picked))
        return self._unsure_yes_no(state, text) in (None, reading)

    def _asks_yes_no(self, frame: Frame) -> bool:
        """The open question is a yes/no one: a confirmation, a read-back, or a yes/no slot."""
        if frame.awaiting in ("confirm", "confirm_value"):
            return True
        return (
            frame.awaiting == "slot"
            and bool(frame.slot)
            and self.flow(frame).slots[frame.slot].type == "yes_no"
        )

    def _unsure_yes_no(self, state: ConversationState, text: str) -> str | None:
        """The yes/no reading of an answer to an open yes/no question (None: not such a question)."""
        return self._yes_no(text) if state.frame is not None and self._asks_yes_no(state.frame) else None

    def _enabled(self, state: ConversationState, pattern: str) -> bool:
        return self._pattern(state, pattern).enabled

    def _pattern(self, state: ConversationState, pattern: str) -> PatternOverride:
        if state.frame is None:
            return PatternOverride()
        return self.flow(state.frame).patterns.get(pattern, PatternOverride())  # type: ignore[call-overload]

    def _accepts_zero(self, state: ConversationState) -> bool:
        frame = state.frame
        if frame is None or not frame.awaiting:
            return False
        step = self.flow(frame).steps[frame.step]
        if frame.awaiting == "menu":
            return "0" in step.menu.options
        if frame.awaiting == "slot" and frame.slot:
            dtmf = self.flow(frame).slots[frame.slot].dtmf
            return bool(dtmf and dtmf.allowed and ("0" in (dtmf.menu or {}) or dtmf.min_length <= 1))
        return False

    async def _cancel(self, state: ConversationState, out: TurnOut) -> None:
        out.note("pattern", "cancel")
        frame = state.frame
        if frame is None:
            state.awaiting = "anything_else"
            out.say(f"Okay. {ANYTHING_ELSE}")
            return
        override = self._pattern(state, "cancel")
        out.say(override.say or f"Okay, I've stopped {self.label(frame.flow)}.")
        frame.step = EXIT
        await self.run(state, out)

    # --- answers to an open question ------------------------------------------------------------

    async def _answer(
        self, state: ConversationState, frame: Frame, text: str, digits: str, cues: Cues, out: TurnOut
    ) -> None:
        if frame.awaiting == "confirm_value":
            return await self._value_confirmed(state, frame, text, digits, cues, out)
        if frame.awaiting == "confirm":
            return await self._confirm_answer(state, frame, text, digits, cues, out)
        if frame.awaiting == "confirm_which":
            return await self._which_answer(state, frame, text, digits, cues, out)
        if frame.awaiting == "menu":
            return await self._menu_answer(state, frame, text, digits, out)

    async def _value_confirmed(
        self, state: ConversationState, frame: Frame, text: str, digits: str, cues: Cues, out: TurnOut
    ) -> None:
        """The caller's answer to "I have 5 5 5 ... Is that right?"."""
        name = frame.slot or ""
        value = frame.tentative.pop(name, None)
        frame.awaiting = "slot"
        answer = {"1": "yes", "2": "no"}.get(digits) if digits else self._yes_no(text)
        if answer == "yes" and value is not None:
            frame.slots[name] = value
            state.no_match_streak = state.low_confidence_streak = 0
            out.note("filled", {name: value})
            await self.run(state, out)
            return
        if len(digits) > 1 or any(ch.isdigit() for ch in text):  # "no, it's 5 5 5 ...": the new number
            return await self._slot_answer(state, frame, text, digits, cues, out)
        if answer == "no" or value is None:
            frame.retries += 1
            out.say("Sorry about that. Let's try again.")
            return self.reask(state, out, attempt=max(1, frame.retries))
        # Neither yes nor no ("no, it's 5 5 5 ...", or the number again): read it as the answer.
        await self._slot_answer(state, frame, text, digits, cues, out)

    async def _slot_answer(
        self,
        state: ConversationState,
        frame: Frame,
        text: str,
        digits: str,
        cues: Cues,
        out: TurnOut,
        alternatives: tuple[str, ...] = (),
        confidence: float = 1.0,
    ) -> None:
        name = frame.slot or ""
        slot = self.flow(frame).slots[name]
        choices = self.choices(slot, frame)
        if cues.skip and text and not digits:
            if slot.type == "text" or from_text(name, slot, text, self.nlu, choices, self.now()) is None:
                return await self._skip(state, frame, name, out)
        if digits:
            heard = read_keyed(name, slot, frame, digits, choices, self.now())
        else:
            # The first hypothesis the slot's validator accepts: the ASR's best, else an alternative.
            tries = [
                read_spoken(name, slot, frame, t, choices, self.nlu, self.now())
                for t in (text, *alternatives)
                if t
            ]
            heard = next((h for h in tries if h.value is not None), tries[0] if tries else Heard())
            if heard.value is not None and heard.text != text:
                out.note("hypothesis", alternatives.index(heard.text) + 1)
        frame.partial.pop(name, None)
        if heard.partial:
            frame.partial[name] = heard.partial
        value, rejected, rejection_asks, read_back = heard.value, heard.rejected, heard.asks, heard.read_back
        given = fill_given_slots(self.flow(frame), frame, text, self.nlu, self.choices, self.now(),
                                 exclude=name) if text else {}  # fmt: skip
        if given:
            flow_slots = self.flow(frame).slots
            out.note("also_filled", {n: mask(v) if flow_slots[n].sensitive else v for n, v in given.items()})
        if value is not None and not digits and unsure_number(slot, str(value), tries, confidence):
            # Read a long number back before using it: a wrong digit costs the whole call later.
            frame.tentative[name], frame.awaiting = str(value), "confirm_value"
            out.note("pattern", "confirm_value")
            out.say(f"I have {grouped(str(value))}. Is that right?")
            out.actions.append(Listen("yes_no"))
            return
        if value is not None:
            frame.slots[name] = value
            state.no_match_streak = state.low_confidence_streak = 0
            out.note("filled", {name: mask(value) if slot.sensitive else value})
            await self.run(state, out)
            return
        if read_back and not given:
            return await self._retry(state, frame, out, read_back, reprompt=False)
        if given:  # an answer to a later question: keep it, ask this one again (in other words)
            out.say("Got it.")
            return self.reask(state, out, attempt=max(1, frame.retries))
        if text and not rejected:
            if await self._correct(state, frame, text, cues, out) or await self._interrupt(state, text, out):
                return
            if await self._llm_route(state, text, out):
                return
        await self._retry(
            state, frame, out, rejected or "Sorry, I didn't get that.", reprompt=not rejection_asks
        )

    async def _retry(
        self, state: ConversationState, frame: Frame, out: TurnOut, message: str, *, reprompt: bool = True
    ) -> None:
        """A failed answer to the open question: escalate reprompts, then the slot's on_failure.
        Without ``reprompt`` the message already asks (a read-back saying what is missing)."""
        frame.retries += 1
        state.no_match_streak += 1
        out.note("pattern", "no_match")
        limit = self.settings.max_no_match
        if frame.awaiting == "slot" and frame.slot:
            limit = self.flow(frame).slots[frame.slot].max_retries
        elif frame.awaiting == "menu":
            limit = self.flow(frame).steps[frame.step].menu.max_retries
        if frame.retries < limit:
            out.say(_not_again(message, state.last_prompt))
            if not reprompt and frame.awaiting == "slot" and frame.slot:
                return self.listen_for_keys(self.flow(frame).slots[frame.slot], out)
            return self.reask(state, out, attempt=frame.retries)
        action = (
            self.flow(frame).slots[frame.slot].on_failure
            if frame.awaiting == "slot" and frame.slot
            else "transfer"
        )
        if action == "transfer":
            return self.transfer(out, state, "no_match")
        ids = self.flowset.step_ids[frame.flow]
        if action == "end":
            out.say("Let's leave that for now.")
            frame.step = EXIT
        elif isinstance(action, Goto):
            frame.step = ids[action.goto]
        else:  # skip / continue
            frame.step = following(self.flow(frame), ids, frame.step)
        await self.run(state, out)

    async def _skip(self, state: ConversationState, frame: Frame, name: str, out: TurnOut) -> None:
        slot = self.flow(frame).slots[name]
        out.note("pattern", "skip")
        if not self._enabled(state, "skip") or slot.on_failure not in ("skip", "continue"):
            out.say(f"I'm afraid I need {slot.label or name.replace('_', ' ')} to continue.")
            return self.reask(state, out)
        out.say(self._pattern(state, "skip").say or "Okay, let's skip that.")
        frame.step = following(self.flow(frame), self.flowset.step_ids[frame.flow], frame.step)
        await self.run(state, out)

    async def _correct(
        self, state: ConversationState, frame: Frame, text: str, cues: Cues, out: TurnOut
    ) -> bool:
        """'Actually, make that Tuesday': re-fill an earlier slot and resume from there."""
        if not self._enabled(state, "correction"):
            return False
        flow = self.flow(frame)
        if not cues.correction and not any(e.correction for e in self._parse(text).entities):
            return False
        order: dict[str, int] = {}  # where each slot is first collected: the flow resumes there
        for i, s in enumerate(flow.steps):
            if s.kind == "collect":
                order.setdefault(s.collect, i)
        lowered = text.lower()

        def rank(name: str) -> tuple[bool, int, int]:
            """Named slots first, then the most recently asked (a slot may be collected twice),
            then prefilled ones by their place in the flow."""
            slot = flow.slots[name]
            spoken = (slot.label or name).lower().replace("your ", "")
            mentioned = spoken in lowered or name.replace("_", " ") in lowered
            asked = max((i for i, n in enumerate(frame.asked) if n == name), default=-1)
            return (not mentioned, -asked, -order.get(name, -1))

        candidates = [
            n for n in frame.slots if n in flow.slots and flow.slots[n].type not in ("text", "yes_no")
        ]
        for name in sorted(candidates, key=rank):
            slot = flow.slots[name]
            ent = from_text(name, slot, text, self.nlu, self.choices(slot, frame), self.now())
            if ent is None:
                continue
            try:
                value = moved_date(slot, frame, validate(slot, ent.value, self.choices(slot, frame)), text)
            except Rejected:
                continue
            frame.slots[name] = value
            out.note("pattern", "correction")
            out.note("filled", {name: mask(value) if slot.sensitive else value})
            spoken = "that" if slot.sensitive else SPOKEN_FORMATS.get(slot.type, str)(value)
            out.say(self._pattern(state, "correction").say or f"Okay, I've changed that to {spoken}.")
            frame.step = order.get(name, frame.step)
            frame.awaiting = None
            await self.run(state, out)
            return True
        # "Make that <something we could not read>": the caller is changing an earlier answer.
        # Ask that question again rather than repeating the open one they did not answer.
        if CHANGE_REQUEST.search(text) and candidates:
            name = sorted(candidates, key=rank)[0]
            if flow.slots[name].sensitive:
                return False
            del frame.slots[name]
            out.note("pattern", "correction_reask")
            out.say("Sure, let's change that.")
            frame.step = order.get(name, frame.step)
            frame.awaiting = None
            await self.run(state, out)
            return True
        return False

    async def _interrupt(self, state: ConversationState, text: str, out: TurnOut) -> bool:
        """Another request in the middle of a flow: run it, then come back (digression and resume)."""
        top = self._confident_intent(text)
        current = {f.flow for f in state.frames}
        if top is None or top in current:
            return False
        if self.flowset.flows[top].digression and not self._enabled(state, "digression"):
            return False
        out.note("pattern", "digression")
        out.note("intent", top)
        await self.start_flow(state, top, out, text)
        return True

    async def _confirm_answer(
        self, state: ConversationState, frame: Frame, text: str, digits: str, cues: Cues, out: TurnOut
    ) -> None:
        if text and await self._correct(state, frame, text, cues, out):
            return
        answer = {"1": "yes", "2": "no"}.get(digits) if digits else self._yes_no(text)
        if answer == "yes":
            state.no_match_streak = 0
            out.note("confirmed", True)
            frame.step = following(self.flow(frame), self.flowset.step_ids[frame.flow], frame.step)
            return await self.run(state, out)
        if answer == "no":
            out.note("confirmed", False)
            options = self.changeable(frame)
            if len(options) == 1:
                return await self._change(state, frame, options[0], out)
            if options:
                frame.awaiting, frame.retries = "confirm_which", 0
                out.say(self.which_prompt(frame))
                return
            out.say("Okay, I won't go ahead with that.")
            frame.step = EXIT
            return await self.run(state, out)
        if text and await self._interrupt(state, text, out):
            return
        await self._retry(state, frame, out, "Sorry, was that a yes or a no?")

    async def _which_answer(
        self, state: ConversationState, frame: Frame, text: str, digits: str, cues: Cues, out: TurnOut
    ) -> None:
        if text and await self._correct(state, frame, text, Cues(False, False, False, True), out):
            return
        options = self.changeable(frame)
        flow = self.flow(frame)
        labels = [flow.slots[s].label or s.replace("_", " ") for s in options]
        picked = None
        if digits.isdigit() and 1 <= int(digits) <= len(options):
            picked = options[int(digits) - 1]
        elif text and (label := match_choice(text, labels, cutoff=60)):
            picked = options[labels.index(label)]
        if picked:
            return await self._change(state, frame, picked, out)
        await self._retry(state, frame, out, "Sorry, which part?")

    async def _change(self, state: ConversationState, frame: Frame, name: str, out: TurnOut) -> None:
        flow = self.flow(frame)
        frame.slots.pop(name, None)
        frame.step = next(i for i, s in enumerate(flow.steps) if s.kind == "collect" and s.collect == name)
        frame.awaiting = None
        out.note("changing", name)
        await self.run(state, out)

    async def _menu_answer(
        self, state: ConversationState, frame: Frame, text: str, digits: str, out: TurnOut
    ) -> None:
        step = self.flow(frame).steps[frame.step]
        options = step.menu.options
        key = digits[:1] if digits else None
        if text and key is None:
            spoken: dict[str, str] = {}
            for k, opt in options.items():
                for phrase in (opt.label, *opt.synonyms):
                    spoken[phrase] = k
            words = {"one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "nine": "9"}
            numbers = [d for w, d in words.items() if f" {w} " in f" {text.lower()} "]
            if numbers and numbers[0] in options:
                key = numbers[0]
            elif phrase := match_choice(text, list(spoken)):
                key = spoken[phrase]
            elif (top := self._confident_intent(text)) is not None:
                key = next((k for k, o in options.items() if o.flow == top), None)
                if key is None:
                    state.frames.pop()
                    out.note("intent", top)
                    return await self.start_flow(state, top, out, text)
        if key not in options:
            return await self._retry(state, frame, out, "Sorry, that's not one of the options.")
        opt = options[key]
        out.note("menu", key)
        state.no_match_streak = 0
        if opt.flow:
            state.frames.pop()  # the menu hands over; "anything else?" brings the caller back to it
            return await self.start_flow(state, opt.flow, out)
        if opt.transfer:
            out.say(opt.say or "")
            return self.transfer(out, state, opt.transfer.reason, queue=opt.transfer.queue,
                                 endpoint=opt.transfer.endpoint, quiet=bool(opt.say))  # fmt: skip
        ids = self.flowset.step_ids[frame.flow]
        if opt.goto:
            frame.step = ids[opt.goto]
        else:
            out.say(self.render(opt.say or "", state, frame, out))
            frame.step = following(self.flow(frame), ids, frame.step)
        await self.run(state, out)

    # --- bookkeeping ----------------------------------------------------------------------------

    def _log_caller(self, state: ConversationState, caller: CallerInput, out: TurnOut) -> None:
        frame = state.frame
        secret_now = bool(
            frame and frame.awaiting == "slot" and frame.slot and self.flow(frame).slots[frame.slot].sensitive
        )
        heard = caller.text or (f"#{caller.digits}" if caller.digits else "(silence)")
        shown = mask(heard) if secret_now else redact(heard, self.secrets(state))
        state.transcript.append({"role": "caller", "text": shown})
        out.note("input", shown)
        out.note("input_masked", shown != heard)  # the record keeps only the masked form

    def _finish(self, state: ConversationState, out: TurnOut, started: float) -> Turn:
        if out.decision.get("pattern") != "repeat":
            _never_twice(out, state.last_prompt)
        says = [a.text for a in out.actions if getattr(a, "kind", "") == "say" and a.text]
        secrets = self.secrets(state)
        for text in says:
            state.transcript.append({"role": "agent", "text": redact(text, secrets)})
        if says and out.decision.get("pattern") != "repeat":
            state.last_prompt = " ".join(says)
        if not state.ended and state.frame is None and not any(isinstance(a, Listen) for a in out.actions):
            # No slot is open: the next turn is a request, worded like what we can help with.
            out.actions.append(Listen("request", choices=self.request_labels()))
        out.note("slots", self.slot_log(state))
        out.note("flow", state.frame.flow if state.frame else out.decision.get("flow"))
        out.note("ms", elapsed_ms(started))
        return Turn(actions=out.actions, state=state, decision=out.decision, interim=out.interim)


def _not_again(message: str, last: str) -> str:
    """Never the same words twice in a row: the second time a rejection opens differently (its
    own first sentence, "That one isn't available.", gives way when the rest still asks)."""
    if message.strip() != last.strip():
        return message
    first, _, rest = message.partition(". ")
    return f"I'm sorry, that still doesn't work. {rest if rest and len(first) < 40 else message}"


MAX_REPEATS = 2  # the same prompt said again on request, in a row
STILL_DID_NOT_CATCH = "I'm sorry, I still didn't catch that."


def _never_twice(out: TurnOut, last: str) -> None:
    """The last guard of "never the same reprompt twice in a row": when this turn would say
    exactly what the last one said (two failure paths can land on the same prompt), its opening
    changes: the caller hears that we know we are asking again."""
    says = [(i, a) for i, a in enumerate(out.actions) if isinstance(a, Say) and a.text]
    if not says or not last:
        return
    i, first = says[0]
    whole = " ".join(a.text for _, a in says) == last
    same_apology = len(says) > 1 and first.text.startswith("Sorry") and last.startswith(first.text + " ")
    if not (whole or same_apology):
        return
    text = STILL_DID_NOT_CATCH if len(says) > 1 else f"Sorry, once more: {first.text}"
    out.actions[i] = dataclasses.replace(first, text=text)
    out.note("varied", True)
