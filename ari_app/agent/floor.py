"""agent: the floor. The one consumer of the caller's events, and the only place that decides
what they mean while a prompt plays:

- the caller starts making sound -> the prompt pauses within a frame or two (reaction time kept);
- it was real speech (or a key press) -> the prompt is interrupted, the caller has the floor;
- it was a blip (cough, "mm-hm") -> the prompt resumes where it paused, or repeats if too late;
- prompts marked not interruptible (legal disclosures) are never stopped; what the caller says
  meanwhile is kept and answered after the prompt;
- silence is not "no input" while we talk; the no-input timer starts again when we stop.

Between prompts it hands the conversation the next caller input, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

from ari_app.agent.events import (
    BargeIn,
    CallerEvent,
    CallerInputEvent,
    Digits,
    FalseBargeIn,
    HungUp,
    NoInput,
    PossibleBargeIn,
    UserTurn,
)
from ari_app.agent.listener import Listener
from ari_app.agent.speaker import Speaker
from ari_app.agent.speech_handle import SpeakResult, SpeechHandle


class Floor:
    def __init__(self, speaker: Speaker, listener: Listener, events: asyncio.Queue[CallerEvent]) -> None:
        self._speaker = speaker
        self._listener = listener
        self._events = events
        self._backlog: deque[CallerInputEvent] = deque()  # inputs that arrived while we spoke
        self._speaking: SpeechHandle | None = None

    # What the call's watchdog reads.
    def speech_starved_s(self, now: float) -> float | None:
        return None if self._speaking is None else (self._speaking.starved_s(now) or 0.0)

    @property
    def listening_alive(self) -> bool:
        return self._listener.alive

    async def say(self, text: str, *, interruptible: bool = True) -> SpeakResult:
        """Speak ``text`` and handle the caller meanwhile; returns when the prompt has ended."""
        handle = self._speaking = self._speaker.say(text, interruptible=interruptible)
        self._listener.watch_barge_in(interruptible)
        self._listener.restart_no_input_timer()
        try:
            while not handle.done:
                ev = await self._next_event_or_end_of(handle)
                if ev is not None:
                    self._while_speaking(handle, ev)
            return await handle.wait_for_playout()
        finally:
            self._speaking = None
            if not handle.done:  # we were cancelled (the call is over)
                handle.cancel()
            self._listener.watch_barge_in(False)
            self._listener.restart_no_input_timer()

    async def next_input(self) -> CallerInputEvent:
        """The next caller turn, key entry, silence report or hang-up (barge-in leftovers skipped)."""
        if self._backlog:
            return self._backlog.popleft()
        while True:
            ev = await self._events.get()
            if isinstance(ev, UserTurn | Digits | NoInput | HungUp):
                return ev

    def _while_speaking(self, handle: SpeechHandle, ev: CallerEvent) -> None:
        if isinstance(ev, PossibleBargeIn):
            handle.pause(cause_at=ev.at)
        elif isinstance(ev, BargeIn):
            handle.interrupt(cause_at=ev.at)
        elif isinstance(ev, FalseBargeIn):
            if handle.paused:
                handle.resume(from_start=not ev.resume)
                self._listener.watch_barge_in(True)
        elif isinstance(ev, UserTurn | Digits):
            if handle.paused:  # it started as a possible barge-in and turned out to be a whole turn
                handle.interrupt()
            self._backlog.append(ev)
        elif isinstance(ev, HungUp):
            handle.cancel()
            self._backlog.append(ev)
        # NoInput: we are talking, the caller is not silent. SpeechStarted: the detector decides.

    async def _next_event_or_end_of(self, handle: SpeechHandle) -> CallerEvent | None:
        getter = asyncio.ensure_future(self._events.get())
        ended = asyncio.ensure_future(handle.wait_done())
        try:
            await asyncio.wait({getter, ended}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (getter, ended):
                if not t.done():
                    t.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await t
        return getter.result() if getter.done() and not getter.cancelled() else None
