"""The voice agent: what runs inside a call once media is attached.

listen (VAD -> endpointing -> ASR) -> decide (dialog engine) -> speak (TTS over our RTP),
with the session record written to Redis after every turn and a warm transfer when the
dialogue (or the escalation policy) asks for a person.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from ari_app import stage_cpu
from ari_app.agent.events import CallerEvent, CallerInputEvent, Digits, HungUp, UserTurn
from ari_app.agent.floor import Floor
from ari_app.agent.listener import Listener
from ari_app.agent.speaker import Speaker
from ari_app.agent.speech_handle import SpeechFailed
from ari_app.agent.watchdog import Watchdog
from ari_app.calls.call import Call, CallerHungUp
from ari_app.config import Settings
from ari_app.dialog.state import (
    Action,
    CallContext,
    CallerInput,
    CollectDigits,
    ConversationState,
    Hangup,
    Listen,
    Say,
    Transfer,
)
from ari_app.logs import redact_text
from ari_app.speech.asr import Asr
from ari_app.speech.expectation import Expectation
from ari_app.speech.tts import Tts
from ari_app.speech.vad import Vad
from ari_app.transfer.context import transfer_request
from ari_app.transfer.warm import TransferRequest, TransferResult, warm_transfer

if TYPE_CHECKING:
    from ari_app.agent.metrics import AgentMetrics
    from ari_app.dialog.engine import DialogEngine
    from ari_app.session.store import SessionStore

log = structlog.get_logger(__name__)

RESUME_APOLOGY = "Sorry about that, we had a brief technical problem."
NO_ANSWER_PROMPT = (
    "I'm sorry, nobody is free to take your call right now. I can keep helping you here, "
    "or you can call back later. What would you like to do?"
)
FAILURE_APOLOGY = "I'm sorry, something went wrong on our side. Let me get you to someone who can help."
RESCUE_SAY_MAX_S = 8.0
STILL_TRANSFERRING = "I'm still putting you through to someone."
CALLER_EVENTS_MAX = 256  # a floor that stopped reading is a fault (the watchdog), not a memory leak
RECENT_CALLS = 100
TRANSFER_FAILED_PROMPT = (
    "I'm sorry, I can't transfer you right now. I can keep helping you here, "
    "or you can call back later. What would you like to do?"
)


@dataclass
class TurnMetrics:
    """One turn's timeline in milliseconds from the end of the caller's speech."""

    turn: int
    input: str
    asr_ms: float | None = None  # end of speech -> transcript ready
    decide_ms: float | None = None  # transcript -> reply decided (understanding + dialogue + tools)
    first_audio_ms: float | None = None  # end of speech -> first agent audio frame sent
    speculative_hit: bool | None = None
    barge_in_ms: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


Whisper = Callable[[], Awaitable[None]]
TransferFn = Callable[[Call, TransferRequest, Whisper], Awaitable[TransferResult]]


@dataclass
class AgentDeps:
    """Everything a call needs, loaded once per process and shared by all calls."""

    engine: DialogEngine
    vad_factory: Callable[[], Vad]  # one per call: VADs keep state
    asr: Asr
    tts: Tts
    settings: Settings
    store: SessionStore | None = None
    metrics: AgentMetrics | None = None
    transfer: TransferFn = warm_transfer  # the real stack's warm transfer; a fake in the harness
    clock: Callable[[], float] = time.monotonic
    prompts: list[str] = field(default_factory=list)  # fixed prompts to pre-synthesise
    # The last calls' transcripts, for the demo and CLI printing (bounded: a server runs for months).
    transcripts: deque[list[tuple[str, str]]] = field(default_factory=lambda: deque(maxlen=RECENT_CALLS))
    turn_metrics: list[TurnMetrics] = field(default_factory=list)


class VoiceAgent:
    def __init__(self, deps: AgentDeps) -> None:
        self.d = deps

    async def __call__(self, call: Call) -> None:
        if call.rejoined:  # taken over while bridged to a person: only watch until it ends
            await self._stay_with_agent(call)
            return
        assert call.media is not None
        d = self.d
        events: asyncio.Queue[CallerEvent] = asyncio.Queue(maxsize=CALLER_EVENTS_MAX)
        listener = Listener(call.media, call.digits, d.vad_factory(), d.asr, d.settings.speech.turn,
                            _bounded(events, call), clock=d.clock)  # fmt: skip
        floor = Floor(Speaker(call.media, d.tts, clock=d.clock), listener, events)
        cs = d.settings.calls
        dog = Watchdog(cs.watchdog_s, d.settings.speech.turn.no_input_timeout_ms / 1000,
                       cs.decide_timeout_s, clock=d.clock)  # fmt: skip
        session = _Session(call, d)
        resumed = _resume_state(call)
        if resumed is None:
            await session.create()  # a fresh call, or a takeover whose record was unusable
        listener.start()
        fault: str | None = None
        try:
            convo = asyncio.create_task(self._converse(call, resumed, floor, listener, session, dog))
            stuck = asyncio.create_task(dog.watch(floor))
            try:
                await asyncio.wait({convo, stuck}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for t in (convo, stuck):
                    if not t.done():
                        t.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await t
            if stuck.done() and not stuck.cancelled() and not call.hung_up.is_set():
                fault = stuck.result()
                log.error("call.stuck", session=call.info.session_id, fault=fault, phase=dog.phase)
            else:
                try:
                    convo.result()
                except (CallerHungUp, asyncio.CancelledError):
                    raise
                except SpeechFailed as e:
                    fault = "tts_failed"
                    log.error("call.fault", session=call.info.session_id, fault=fault, error=str(e))
                except Exception:
                    fault = "error"
                    log.exception("call.fault", session=call.info.session_id, phase=dog.phase)
            if fault is not None and not call.hung_up.is_set():
                await self._rescue(call, floor, session, fault)
        finally:
            await listener.stop()
            if call.detached:  # handed over to another instance: the session lives on there
                await session.hand_over()
            else:
                await session.end(call.end_reason if call.end_reason != "unknown" else "completed")

    async def _converse(self, call: Call, resumed: ConversationState | None, floor: Floor,
                        listener: Listener, session: _Session, dog: Watchdog) -> None:  # fmt: skip
        d = self.d
        state: ConversationState
        actions: list[Action]
        if resumed is not None:  # taken over from a dead instance: pick up where it was
            state = resumed
            session.last_state = state.to_dict()
            await session.record("system", "call taken over by another instance", None)
            t = call.resume_transfer
            if t:  # it was putting the caller through to a person: do that again
                actions = [Say(f"{RESUME_APOLOGY} {STILL_TRANSFERRING}"),
                           Transfer(str(t.get("reason") or "caller_request"), t.get("queue"),
                                    t.get("endpoint"), str(t.get("summary") or ""))]  # fmt: skip
            else:
                actions = [Say(f"{RESUME_APOLOGY} {state.last_prompt}".strip())]
        else:
            out = call.outbound  # a call we placed: its campaign's flow, with what we know already
            turn = d.engine.start(
                CallContext(call.info.session_id, call.info.caller_number, call.info.called,
                            flow=out.flow if out else None, slots=dict(out.slots) if out else {})
            )  # fmt: skip
            state = turn.state
            await session.record("system", "call started", None)
            actions = list(turn.actions)
            if call.resumed:  # adopted, but the saved state was lost or unreadable
                actions.insert(0, Say(RESUME_APOLOGY))
            await session.save(state, {})  # before speaking: a crash now resumes at this prompt
        dog.enter("speaking")
        ended = await self._perform(call, actions, floor, listener, session, None, dog)
        await session.finish(None)
        n = 0
        while not ended:
            dog.enter("listening")
            ev = await floor.next_input()
            dog.enter("deciding")
            if isinstance(ev, HungUp):
                call.end_reason = "caller_hangup"
                break
            n += 1
            m = TurnMetrics(turn=n, input=type(ev).__name__)
            inp = self._to_input(ev, m)
            decided0 = d.clock()

            async def on_action(a: Action) -> None:  # holding phrase while a slow tool runs
                if isinstance(a, Say):
                    await floor.say(a.text, interruptible=a.interruptible)

            with stage_cpu.loop_section("dialogue"):  # webhooks journal tool_started/_finished
                turn = await d.engine.handle(state, inp, on_action=on_action, on_tool_event=session.event)
            state = turn.state
            m.decide_ms = round((d.clock() - decided0) * 1000, 1)
            await session.record_caller(inp, turn.decision)
            # Saved before it is carried out: a crash while speaking (or transferring) resumes
            # at this turn's prompt, not at the previous question.
            await session.save(state, turn.decision)
            log.info("call.turn", session=call.info.session_id, input=m.input, decision=turn.decision,
                     actions=[type(a).__name__ for a in turn.actions])  # fmt: skip
            dog.enter("speaking")
            ended = await self._perform(call, turn.actions, floor, listener, session, (m, _wire_end(ev)), dog)
            if not ended and state.ended:  # a transfer that did not connect: the caller is back
                state = d.engine.transfer_returned(state)
                await session.save(state, turn.decision)
            await session.finish(m)

    async def _stay_with_agent(self, call: Call) -> None:
        session = _Session(call, self.d)
        call.end_reason = "transferred"
        try:
            await session.record("system", "call taken over by another instance while with a person", None)
            await call.wait_until_either_leaves()
        finally:
            if call.detached:
                await session.hand_over()
            else:
                await session.end("transferred")

    async def _rescue(self, call: Call, floor: Floor, session: _Session, fault: str) -> None:
        """Something broke: apologise in our voice if it still works, then the fallback."""
        from ari_app.calls.fallback import fail_over

        await session.event("fault", {"fault": fault})
        apologised = False
        if fault not in ("tts_failed", "speech_stalled"):
            try:
                res = await asyncio.wait_for(
                    floor.say(FAILURE_APOLOGY, interruptible=False), RESCUE_SAY_MAX_S
                )
                apologised = res.frames_sent > 0
            except Exception as e:  # Asterisk's own recording is played instead
                log.warning("call.apology_failed", session=call.info.session_id, error=str(e))
        if apologised:
            await session.record("agent", FAILURE_APOLOGY, None)
        await fail_over(call, fault, apologised=apologised)

    def _to_input(self, ev: CallerInputEvent, m: TurnMetrics) -> CallerInput:
        if isinstance(ev, UserTurn):
            m.asr_ms = round(ev.latency_ms, 1)
            m.speculative_hit = ev.speculative_hit
            t = ev.transcript
            return CallerInput(text=t.text.strip(), asr_confidence=t.confidence or 1.0,
                               alternatives=tuple(a.strip() for a in t.alternatives), picked=t.picked)  # fmt: skip
        if isinstance(ev, Digits):
            return CallerInput(digits=ev.digits.rstrip("#") or ev.digits)
        return CallerInput(no_input=True)

    # ------------------------------------------------------------------ output
    async def _perform(self, call: Call, actions: list[Action], floor: Floor, listener: Listener,
                       session: _Session, timing: tuple[TurnMetrics, float | None] | None,
                       dog: Watchdog) -> bool:  # fmt: skip
        """Carry out the engine's actions. Returns True when the conversation is over."""
        first = True
        # What the next answer may be, set before we speak: a caller may answer over the prompt.
        listener.expect_digits()
        listener.expect(None)
        for a in actions:
            if isinstance(a, CollectDigits):
                listener.expect_digits(a.max, a.terminator)
            elif isinstance(a, Listen):
                listener.expect(Expectation(a.slot_type, a.digits, a.choices))
        for a in actions:
            if isinstance(a, Say):
                shown = "[sensitive]" if a.sensitive else a.text
                await session.record("agent", shown, None)
                res = await floor.say(a.text, interruptible=a.interruptible)
                if first and timing is not None:
                    m, eos = timing
                    if eos is not None and res.first_audio_at is not None:
                        m.first_audio_ms = round((res.first_audio_at - eos) * 1000, 1)
                    m.barge_in_ms = res.barge_in_reaction_ms
                first = False
                if res.interrupted:
                    break  # the caller has the floor; the remaining prompts are moot
            elif isinstance(a, Transfer):
                dog.enter("transferring")
                return await self._transfer(call, a, floor, session)
            elif isinstance(a, Hangup):
                call.end_reason = a.reason or "completed"
                return True
        return False

    async def _transfer(self, call: Call, t: Transfer, floor: Floor, session: _Session) -> bool:
        s = self.d.settings
        req = transfer_request(t, default_queue=s.transfer.queue, timeout=s.transfer.timeout,
                               sensitive=s.session.sensitive_slots)  # fmt: skip
        await session.flush()  # the agent's screen-pop shows the turn that asked for them
        await session.transfer("transferring", req)

        async def whisper() -> None:
            await floor.say(f"Incoming call. {req.summary}", interruptible=False)

        result = await self.d.transfer(call, req, whisper)
        await session.transfer(result.outcome, req)
        if result.outcome == "connected":
            call.end_reason = "transferred"
            await call.wait_until_either_leaves()
            return True
        if result.outcome == "caller_hung_up":
            call.end_reason = "caller_hangup"
            return True
        log.info("transfer.returned", session=call.info.session_id, outcome=result.outcome,
                 detail=result.detail)  # fmt: skip
        apology = TRANSFER_FAILED_PROMPT if result.outcome == "failed" else NO_ANSWER_PROMPT
        await session.record("agent", apology, None)
        await floor.say(apology)
        return False


def _bounded(q: asyncio.Queue[CallerEvent], call: Call) -> Callable[[CallerEvent], None]:
    """The listener's emit hook: never blocks, drops (and says so once) when nobody reads."""
    warned = False

    def emit(ev: CallerEvent) -> None:
        nonlocal warned
        try:
            q.put_nowait(ev)
        except asyncio.QueueFull:
            if not warned:
                warned = True
                log.error("call.events_dropped", session=call.info.session_id, queued=q.qsize())

    return emit


def _wire_end(ev: CallerInputEvent) -> float | None:
    """Wire time the caller's input ended (their last voiced packet, their last key)."""
    if isinstance(ev, UserTurn):
        return ev.end_of_speech_at
    if isinstance(ev, Digits):
        return ev.last_at
    return None


def _resume_state(call: Call) -> ConversationState | None:
    """The conversation state saved before a takeover, or None to start from the greeting."""
    if not call.resumed or not call.resume_state:
        return None
    try:
        return ConversationState.from_dict(call.resume_state)
    except Exception as e:  # valid JSON of the wrong shape: restart rather than strand the caller
        log.error("takeover.state_unreadable", session=call.info.session_id, error=str(e))
        return None


def _flow_sensitive(engine: DialogEngine, state: ConversationState) -> list[str]:
    """Slots the call's flows mark sensitive: the store masks them, the agent page never shows them."""
    flows = engine.flowset.flows
    return sorted(
        {n for f in state.frames if f.flow in flows for n, s in flows[f.flow].slots.items() if s.sensitive}
    )


class _Session:
    """Writes the call record; a Redis problem is logged, never allowed to drop the call."""

    def __init__(self, call: Call, d: AgentDeps) -> None:
        self.call, self.d = call, d
        self.sid = call.info.session_id
        self.pending: list[Any] = []
        self.last_state: dict[str, Any] = {}
        self.lines: list[tuple[str, str]] = []
        d.transcripts.append(self.lines)  # a bounded deque: the last calls only

    async def create(self) -> None:
        if self.d.store is None:
            return
        from ari_app.session.models import CallRecord

        c = self.call
        rec = CallRecord(session_id=self.sid, channel_id=c.channel.id, bridge_id=c.bridge_id,
                         media_channel_id=c.media_channel_id, caller_number=c.info.caller_number,
                         caller_name=c.info.caller_name, called_number=c.info.called)  # fmt: skip
        with self._guard("create"):
            await self.d.store.create(rec)

    async def record_caller(self, inp: CallerInput, decision: dict[str, Any]) -> None:
        """The caller's words as the engine logged them: answers to sensitive slots arrive masked."""
        shown = str(decision.get("input", ""))
        masked = bool(decision.get("input_masked"))
        if inp.text:
            await self.record("caller", shown if masked else inp.text, inp.asr_confidence)
        elif inp.digits:
            await self.record("caller", f"[keys] {shown.lstrip('#') if masked else inp.digits}", None)

    async def record(self, speaker: str, text: str, confidence: float | None) -> None:
        from ari_app.session.models import TranscriptEntry

        clean = redact_text(text)
        self.lines.append((speaker, clean))
        log.info(
            "call.say" if speaker == "agent" else "call.heard", speaker=speaker, text=clean, session=self.sid
        )
        self.pending.append(
            TranscriptEntry(speaker=speaker, text=clean, confidence=confidence, redacted=clean != text)
        )

    async def save(self, state: ConversationState, decision: dict[str, Any]) -> None:
        """The turn's state and transcript lines, written before the turn is carried out."""
        if self.d.store is None:
            return
        entries, self.pending = self.pending, []
        self.last_state = state.to_dict()
        sensitive = _flow_sensitive(self.d.engine, state)
        with self._guard("save_turn"):
            await self.d.store.save_turn(self.sid, self.last_state, entries, sensitive_slots=sensitive)
            frame = state.frame
            slots = dict(frame.slots) if frame else {}
            await self.d.store.update(self.sid, event=None, slots=slots, intent=frame.flow if frame else None,
                                      sensitive_slots=sensitive)  # fmt: skip

    async def finish(self, m: TurnMetrics | None) -> None:
        """The turn has been spoken: its lines and timings join the saved turn."""
        if m is not None:
            self.d.turn_metrics = [*self.d.turn_metrics[-999:], m]
            if self.d.metrics is not None:
                self.d.metrics.observe(m)
        if self.d.store is None:
            return
        entries, self.pending = self.pending, []
        metrics = (
            None if m is None else {k: v for k, v in m.__dict__.items() if v is not None and k != "extra"}
        )
        with self._guard("finish_turn"):
            await self.d.store.finish_turn(self.sid, entries, metrics)

    async def event(self, type: str, data: dict[str, Any]) -> None:
        if self.d.store is None:
            return
        with self._guard(type):
            await self.d.store.append_event(self.sid, type, data)

    async def flush(self) -> None:
        """Write the transcript lines of the turn in progress now (e.g. before a transfer)."""
        if self.d.store is None or not self.pending:
            return
        entries, self.pending = self.pending, []
        with self._guard("flush"):
            await self.d.store.save_turn(self.sid, self.last_state, entries, None)

    async def transfer(self, status: str, req: TransferRequest) -> None:
        if self.d.store is None:
            return
        with self._guard("transfer"):
            st = {"transferring": "transferring", "connected": "transferred"}.get(status, "active")
            c = self.call
            await self.d.store.record_transfer(
                self.sid,
                st,
                {"outcome": status, "reason": req.reason, "queue": req.queue, "endpoint": req.endpoint,
                 "summary": req.summary},
                bridge_id=c.bridge_id, media_channel_id=c.media_channel_id, agent_channel_id=c.agent_channel_id,
            )  # fmt: skip

    async def hand_over(self) -> None:
        """Save what is pending and let go of the lease so another instance adopts the call now."""
        if self.d.store is None:
            return
        with self._guard("hand_over"):
            if self.pending:
                await self.d.store.save_turn(self.sid, self.last_state, self.pending, None)
            await self.d.store.append_event(self.sid, "handed_over", {"instance": self.d.store.instance_id})
            await self.d.store.leases.release(self.sid)

    async def end(self, reason: str) -> None:
        if self.d.store is None:
            return
        with self._guard("end"):
            if self.pending:
                await self.d.store.save_turn(self.sid, self.last_state, self.pending, None)
            await self.d.store.end(self.sid, reason)

    @contextlib.contextmanager
    def _guard(self, what: str):  # type: ignore[no-untyped-def]
        try:
            yield
        except Exception as e:  # the call goes on without its record rather than dropping
            log.error("session.write_failed", what=what, session=self.sid, error=str(e))
