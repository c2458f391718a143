"""The caller's side of a live call: one task reads the media stream, runs the VAD once per
frame, feeds the turn taker (endpointing + speculative ASR) and, while a prompt plays, the
barge-in detector. Everything the conversation needs arrives on one queue, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from ari_app.calls.call import Call, Digit
from ari_app.speech.asr import Asr
from ari_app.speech.turn import (
    BargeIn,
    BargeInDetector,
    FalseBargeIn,
    NoInput,
    PossibleBargeIn,
    TurnSettings,
    TurnTaker,
    UserTurn,
)
from ari_app.speech.vad import Vad


class _ObservingVad:
    """Computes each frame's probability once and shares it with the barge-in detector
    (silero costs ~0.2 ms a frame: doing it twice per call adds up at 20 calls)."""

    def __init__(self, inner: Vad, observe: Callable[[float, float], None]) -> None:
        self.inner = inner
        self.observe = observe

    def speech_probability(self, frame: bytes) -> float:
        p = self.inner.speech_probability(frame)
        self.observe(p, time.monotonic())
        return p

    def reset(self) -> None:
        self.inner.reset()


@dataclass(frozen=True)
class Digits:
    digits: str
    first_at: float
    last_at: float


ListenerEvent = UserTurn | NoInput | Digits | PossibleBargeIn | BargeIn | FalseBargeIn


class Listener:
    def __init__(
        self,
        call: Call,
        vad: Vad,
        asr: Asr,
        turn: TurnSettings,
        *,
        inter_digit_timeout: float = 2.0,
    ) -> None:
        self.call = call
        self.turn_settings = turn
        self.events: asyncio.Queue[ListenerEvent] = asyncio.Queue()
        self.barge = BargeInDetector(turn)
        self.watching_barge_in = False
        self.speaking = False  # no-input is not counted while we talk
        self.inter_digit_timeout = inter_digit_timeout
        self.digit_terminator = "#"
        self.max_digits = 32
        self._vad = _ObservingVad(vad, self._observe)
        self._taker = TurnTaker(self._vad, asr, turn)
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._speech(), name=f"listen-{self.call.channel.id}"),
            asyncio.create_task(self._digits(), name=f"digits-{self.call.channel.id}"),
        ]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t

    def watch_barge_in(self, on: bool) -> None:
        self.watching_barge_in = on
        self.barge.reset()

    def set_speaking(self, on: bool) -> None:
        """While we talk the caller is not 'silent'; when we stop, the no-input timer starts anew."""
        self.speaking = on
        self._taker.endpointer._idle_frames = 0

    def _observe(self, prob: float, now: float) -> None:
        if self.watching_barge_in:
            for ev in self.barge.feed(prob, now):
                self.events.put_nowait(ev)

    async def _pcm(self) -> AsyncIterator[bytes]:
        assert self.call.media is not None
        async for frame in self.call.media.frames():
            yield frame.pcm

    async def _speech(self) -> None:
        async for ev in self._taker.turns(self._pcm()):
            if isinstance(ev, NoInput) and self.speaking:
                continue
            self.events.put_nowait(ev)

    async def _digits(self) -> None:
        """Group DTMF key presses into one entry: terminator, max length, or inter-digit pause.

        A terminator pressed right after an entry that was already complete (max length
        reached) belongs to that entry and is swallowed, not reported as a new one.
        """
        full_at: float | None = None
        while True:
            first: Digit = await self.call.digits.get()
            if (
                full_at is not None
                and first.digit == self.digit_terminator
                and first.at - full_at < self.inter_digit_timeout
            ):
                full_at = None
                continue
            buf, t0, last = [first.digit], first.at, first.at
            # A key press also interrupts a playing prompt (like speech does).
            self.events.put_nowait(BargeIn(at=first.at))
            while buf[-1] != self.digit_terminator and len(buf) < self.max_digits:
                try:
                    d = await asyncio.wait_for(self.call.digits.get(), self.inter_digit_timeout)
                except TimeoutError:
                    break
                buf.append(d.digit)
                last = d.at
            full_at = last if buf[-1] != self.digit_terminator and len(buf) >= self.max_digits else None
            self.events.put_nowait(Digits("".join(buf), t0, last))
