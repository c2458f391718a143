"""Routing when no question is open: which flow does the caller want, clarification between two,
"anything else?", no-match, and the optional LLM's proposal. Mixed into DialogEngine."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ari_app.dialog.answers import match_choice
from ari_app.dialog.filling import fill_given_slots
from ari_app.dialog.nlu.types import IntentScore
from ari_app.dialog.repair import after_no, done_for_now, split_requests, yes_no
from ari_app.dialog.state import ConversationState, Frame, Hangup
from ari_app.dialog.steps import StepRunner, TurnOut

if TYPE_CHECKING:
    pass


MENU_SIZE = 4  # requests listed (and offered on the keypad) when a request was not understood


class IntentRouter(StepRunner):
    def _parse(self, text: str) -> Any:
        """Parses are pure given the fitted model, and a turn often asks about the same text twice."""
        if text not in self._parses:
            if len(self._parses) >= 512:
                self._parses.pop(next(iter(self._parses)))
            self._parses[text] = self.nlu.parse(text)
        return self._parses[text]

    def _yes_no(self, text: str) -> str | None:
        ent = self.nlu.extract(text, "yes_no") if text else None
        return str(ent.value) if ent is not None else yes_no(text)

    def _confident_intent(self, text: str) -> str | None:
        parse = self._parse(text)
        ranked = [
            IntentScore(str(i.name), float(i.score)) for i in parse.intents if i.name in self.flowset.flows
        ]
        if parse.out_of_scope or not ranked or ranked[0].score < self.settings.intent_confidence_min:
            return None
        return ranked[0].name

    async def _route(self, state: ConversationState, text: str, digits: str, out: TurnOut) -> None:
        if not text:
            if self.flowset.entry_flow:
                return await self.start_flow(state, self.flowset.entry_flow, out)
            return await self._no_match(state, out)
        parts = split_requests(text)
        if len(parts) > 1:
            wanted: list[tuple[str, str]] = []
            for part in parts:
                top = self._confident_intent(part)
                if top and top not in [w for w, _ in wanted]:
                    wanted.append((top, part))
            if len(wanted) > 1:
                first, rest = wanted[0], [w for w, _ in wanted[1:]]
                state.queued_flows.extend(rest)
                out.note("pattern", "multi_intent")
                out.note("intent", [w for w, _ in wanted])
                later = " and then ".join(self.label(r) for r in rest)
                out.say(f"I'll help with {self.label(first[0])} first, then {later}.")
                state.no_match_streak = 0
                return await self.start_flow(state, first[0], out, first[1])
        parse = self._parse(text)
        ranked = [
            IntentScore(str(i.name), float(i.score)) for i in parse.intents if i.name in self.flowset.flows
        ]
        out.note("intents", [(i.name, round(i.score, 3)) for i in ranked[:3]])
        threshold = self.settings.intent_confidence_min
        if ranked and not parse.out_of_scope and ranked[0].score >= threshold:
            top = ranked[0]
            if (
                len(ranked) > 1
                and ranked[1].score >= threshold * self.settings.intent_suggest_ratio
                and top.score - ranked[1].score < self.settings.clarify_margin
            ):
                return self._clarify(state, [top.name, ranked[1].name], out, text)
            state.no_match_streak = state.low_confidence_streak = 0
            out.note("intent", top.name)
            out.note("score", round(top.score, 3))
            return await self.start_flow(state, top.name, out, text)
        if (
            ranked
            and not parse.out_of_scope
            and ranked[0].score >= threshold * self.settings.intent_suggest_ratio
        ):
            state.low_confidence_streak += 1
            if state.low_confidence_streak >= self.settings.max_low_confidence:
                return self.transfer(out, state, "low_confidence")
            return self._clarify(state, [ranked[0].name], out, text)
        if await self._llm_route(state, text, out):
            return
        await self._no_match(state, out)

    def _clarify(self, state: ConversationState, options: list[str], out: TurnOut, text: str = "") -> None:
        out.note("pattern", "clarification")
        state.awaiting, state.clarify_options, state.clarify_text = "clarify", options, text
        labels = [self.label(o) for o in options]
        if len(labels) == 1:
            out.say(f"Did you want help with {labels[0]}?")
        else:
            out.say(f"Do you want help with {labels[0]}, or with {labels[1]}?")

    async def _clarified(self, state: ConversationState, text: str, digits: str, out: TurnOut) -> None:
        options = state.clarify_options
        labels = [self.label(o) for o in options]
        picked = None
        if digits.isdigit() and 1 <= int(digits) <= len(options):
            picked = options[int(digits) - 1]
        elif text:
            label = match_choice(text, labels, cutoff=70)
            picked = options[labels.index(label)] if label else None
            if picked is None and len(options) == 1:
                answer = self._yes_no(text)
                if answer == "yes":
                    picked = options[0]
                elif answer == "no":
                    state.awaiting, state.clarify_options, state.clarify_text = "intent", [], ""
                    # "No, I want to reschedule": the request that was meant comes with the no.
                    rest = after_no(text)
                    if rest and (meant := self._confident_intent(rest)) and meant not in options:
                        return await self._route(state, rest, digits, out)
                    out.say("Okay. What can I help you with?")
                    return
            if picked is None and (top := self._confident_intent(text)) in options:
                picked = top
            if picked is None and len(options) == 1 and self._gives_slots(options[0], text):
                picked = options[0]  # "Did you want help with the refund?" "My number is ...": yes
        earlier, state.clarify_options, state.clarify_text = state.clarify_text, [], ""
        if picked is None:
            state.awaiting = "intent"
            return await self._route(state, text, digits, out)
        out.note("intent", picked)
        state.no_match_streak = 0
        await self.start_flow(state, picked, out, f"{earlier} {text}".strip())

    def _gives_slots(self, flow_name: str, text: str) -> bool:
        """Would ``text`` fill a slot of ``flow_name``? (Tried on a scratch frame.)"""
        flow = self.flowset.flows[flow_name]
        return bool(text) and bool(
            fill_given_slots(flow, Frame(flow_name), text, self.nlu, self.choices, self.now())
        )

    async def _anything_else(self, state: ConversationState, text: str, digits: str, out: TurnOut) -> None:
        if text and self._confident_intent(text):
            state.awaiting = "intent"
            return await self._route(state, text, digits, out)
        answer = {"1": "yes", "2": "no"}.get(digits) if digits else self._yes_no(text)
        if text and done_for_now(text):
            answer = "no"
        if answer == "no":
            out.say("Thanks for calling. Goodbye.")
            out.actions.append(Hangup("caller_done"))
            state.ended = True
            return
        if answer == "yes":
            state.awaiting = "intent"
            if self.flowset.entry_flow:
                return await self.start_flow(state, self.flowset.entry_flow, out)
            out.say("Sure. What can I help you with?")
            return
        state.awaiting = "intent"
        await self._route(state, text, digits, out)

    async def _no_match(self, state: ConversationState, out: TurnOut) -> None:
        state.no_match_streak += 1
        state.awaiting = "intent"
        out.note("pattern", "no_match")
        if state.no_match_streak >= self.settings.max_no_match:
            return self.transfer(out, state, "no_match")
        if state.no_match_streak == 1 or not self.offer_menu(state, out, "Sorry, I still didn't get that."):
            out.say("Sorry, I didn't understand that. How can I help you?")

    def request_labels(self) -> tuple[str, ...]:
        """What this agent helps with, as its menu words it (every flow a caller can ask for)."""
        return tuple(self.label(n) for n, f in self.flowset.flows.items() if f.examples)

    def offer_menu(self, state: ConversationState, out: TurnOut, lead: str) -> bool:
        """The second failure to understand a request changes strategy: say what we can do and
        offer the keypad for it (words still work). False when there is nothing to offer."""
        flows = [n for n, f in self.flowset.flows.items() if f.examples and not f.digression][:MENU_SIZE]
        if not flows:
            return False
        labels = [self.label(n) for n in flows]
        listed = ", ".join(labels[:-1]) + f", or {labels[-1]}" if len(labels) > 1 else labels[0]
        keys = ", ".join(f"{i} for {label}" for i, label in enumerate(labels, 1))
        out.say(f"{lead} I can help with {listed}. You can also press {keys}.")
        state.awaiting, state.clarify_options, state.clarify_text = "clarify", flows, ""
        out.note("pattern", "keypad_menu")
        return True

    async def _llm_route(self, state: ConversationState, text: str, out: TurnOut) -> bool:
        """The optional LLM's proposal, checked and carried out; False when there is none."""
        if self.llm is None:
            return False
        from ari_app.dialog.llm import apply_commands

        return await apply_commands(self, state, text, out)
