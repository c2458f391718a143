"""agent: the caller's side of a live call, producing the one stream of caller events.

One task reads the media stream and, for each frame, runs the VAD once and hands the
probability to both machines: the turn taker (endpointing + speculative ASR) and, while a prompt
plays, the barge-in detector. A second task groups DTMF keys into entries. Both emit into the
same ``Emit`` hook, so the floor sees everything in order. The listener never decides what an
event means; the floor tells it what to watch for.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import structlog

from ari_app import stage_cpu
from ari_app.agent.events import BargeIn, Digits, Emit, HungUp
from ari_app.calls.call import Digit
from ari_app.media.transport import MediaTransport
from ari_app.speech.asr import Asr
from ari_app.speech.barge_in import BargeInDetector
from ari_app.speech.expectation import Expectation
from ari_app.speech.recognition import TurnTaker
from ari_app.speech.turn import TurnSettings
from ari_app.speech.vad import Vad

log = structlog.get_logger(__name__)

DEFAULT_MAX_DIGITS = 32
DEFAULT_TERMINATOR = "#"
RECOGNITION_FAILURES_MAX = 2  # in a row
VAD_FAILURES_MAX = 25  # frames in a row (0.5 s): a glitch costs a frame, a broken VAD ends listening


class Listener:
    def __init__(
        self,
        media: MediaTransport,
        digits: asyncio.Queue[Digit],
        vad: Vad,
        asr: Asr,
        turn: TurnSettings,
        emit: Emit,
        *,
        inter_digit_timeout: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._media = media
        self._keys = digits
        self._vad = vad
        self._emit = emit
        self._clock = clock
        self._taker = TurnTaker(asr, turn, clock=clock)
        self._barge = BargeInDetector(turn)
        self._watching_barge_in = False
        self.inter_digit_timeout = inter_digit_timeout
        self.max_digits = DEFAULT_MAX_DIGITS
        self.digit_terminator = DEFAULT_TERMINATOR
        self._tasks: list[asyncio.Task[None]] = []

    # ------------------------------------------------------------------ what the floor asks for
    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._speech(), name="listen-speech"),
            asyncio.create_task(self._digits(), name="listen-digits"),
        ]

    @property
    def alive(self) -> bool:
        """Both producers are running (a finished speech task means the media stream ended)."""
        return bool(self._tasks) and not any(t.done() for t in self._tasks)

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        await self._taker.close()

    def watch_barge_in(self, on: bool) -> None:
        """Report barge-in events (while an interruptible prompt plays), from a fresh detector."""
        self._watching_barge_in = on
        self._barge.reset()

    def restart_no_input_timer(self) -> None:
        self._taker.restart_no_input_timer()

    def expect(self, expectation: Expectation | None) -> None:
        """What the open question expects the caller to say (endpointing, ASR biasing)."""
        self._taker.expect(expectation)

    def expect_digits(self, max_digits: int = DEFAULT_MAX_DIGITS, terminator: str | None = None) -> None:
        """How the next key entry ends: after ``max_digits`` keys or at ``terminator``."""
        self.max_digits = max_digits
        self.digit_terminator = terminator or DEFAULT_TERMINATOR

    # ------------------------------------------------------------------ producers
    async def _speech(self) -> None:
        failures = vad_failures = 0
        async for frame in self._media.frames():
            try:
                with stage_cpu.measured("vad"):
                    prob = self._vad.speech_probability(frame.pcm)
                vad_failures = 0
            except Exception as e:  # the frame counts as silence
                vad_failures += 1
                if vad_failures == 1:
                    log.error("listener.vad_failed", error=str(e), error_type=type(e).__name__)
                if vad_failures >= VAD_FAILURES_MAX:  # the watchdog sees the listener stop
                    raise
                prob = 0.0
            if self._watching_barge_in:
                with stage_cpu.measured("barge_in"):
                    barge = self._barge.feed(prob, frame.received_at)
                for ev in barge:
                    self._emit(ev)
            try:
                events = await self._taker.push(frame, prob)
                failures = 0
            except Exception as e:  # one ASR failure loses this turn, not the call
                failures += 1
                log.error("listener.recognition_failed", error=str(e), error_type=type(e).__name__,
                          in_a_row=failures)  # fmt: skip
                if failures >= RECOGNITION_FAILURES_MAX:  # broken, not a blip: the watchdog
                    raise  # sees the listener stop and hands the caller to a person
                continue
            for event in events:
                self._emit(event)
        self._emit(HungUp(at=self._clock()))

    async def _digits(self) -> None:
        """Group DTMF key presses into one entry: terminator, max length, or inter-digit pause.

        A terminator pressed right after an entry that was already complete (max length
        reached) belongs to that entry and is swallowed, not reported as a new one.
        """
        full_at: float | None = None
        while True:
            first: Digit = await self._keys.get()
            if (
                full_at is not None
                and first.digit == self.digit_terminator
                and first.at - full_at < self.inter_digit_timeout
            ):
                full_at = None
                continue
            buf, t0, last = [first.digit], first.at, first.at
            # A key press also interrupts a playing prompt (like speech does).
            self._emit(BargeIn(at=first.at))
            while buf[-1] != self.digit_terminator and len(buf) < self.max_digits:
                try:
                    d = await asyncio.wait_for(self._keys.get(), self.inter_digit_timeout)
                except TimeoutError:
                    break
                buf.append(d.digit)
                last = d.at
            full_at = last if buf[-1] != self.digit_terminator and len(buf) >= self.max_digits else None
            self._emit(Digits("".join(buf), t0, last))
