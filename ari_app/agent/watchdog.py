"""agent: the per-call watchdog — "nobody is speaking and nobody is listening" is a fault.

Why: a prompt whose synthesis hangs, a listener task that died or a turn that never finishes
deciding leaves the caller in dead air, and no exception ever surfaces to say so. The voice agent
tells the watchdog what the call is doing (deciding, speaking its actions, listening,
transferring); the floor says
whether a prompt is playing and whether it is starved of audio. When one of them has been stuck
for ``calls.watchdog_s`` the watchdog names it, and the agent apologises and hands the caller on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Literal, Protocol

Phase = Literal["deciding", "speaking", "listening", "transferring"]
CHECK_EVERY_S = 0.5


class Watched(Protocol):
    """What the watchdog reads (the floor and the listener provide it)."""

    def speech_starved_s(self, now: float) -> float | None: ...  # None: no prompt playing

    @property
    def listening_alive(self) -> bool: ...


class Watchdog:
    def __init__(
        self,
        limit_s: float,
        no_input_s: float,
        decide_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit_s = limit_s
        self.no_input_s = no_input_s  # the no-input timer must have fired by no_input_s + limit_s
        self.decide_s = decide_s
        self._clock = clock
        self.phase: Phase = "deciding"
        self.since = clock()

    def enter(self, phase: Phase) -> None:
        self.phase, self.since = phase, self._clock()

    def stuck(self, watched: Watched) -> str | None:
        """The fault, if the call is stuck now (a short name for logs and metrics)."""
        if self.phase == "transferring":  # on hold or with a person: not ours to watch
            return None
        now = self._clock()
        if not watched.listening_alive:
            return "listener_stopped"
        starved = watched.speech_starved_s(now)
        if starved is not None:
            return "speech_stalled" if starved > self.limit_s else None
        waited = now - self.since
        if self.phase == "listening" and waited > self.no_input_s + self.limit_s:
            return "no_input_timer_silent"
        if self.phase == "deciding" and waited > self.decide_s:
            return "decide_timeout"
        return None

    async def watch(self, watched: Watched) -> str:
        """Returns the fault as soon as the call is stuck (runs until cancelled otherwise)."""
        while True:
            await asyncio.sleep(CHECK_EVERY_S)
            fault = self.stuck(watched)
            if fault is not None:
                return fault
