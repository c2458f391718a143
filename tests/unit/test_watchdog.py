"""agent: the per-call watchdog names a stuck call, and only a stuck one."""

from __future__ import annotations

from dataclasses import dataclass

from ari_app.agent.watchdog import Watchdog


@dataclass
class Watched:
    starved: float | None = None
    listening_alive: bool = True

    def speech_starved_s(self, now: float) -> float | None:
        return self.starved


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def dog(clock: Clock) -> Watchdog:
    return Watchdog(limit_s=8, no_input_s=6, decide_s=45, clock=clock)


def test_listening_is_stuck_only_after_the_no_input_timer_should_have_fired() -> None:
    c = Clock()
    d = dog(c)
    d.enter("listening")
    c.t += 13.9
    assert d.stuck(Watched()) is None
    c.t += 0.2
    assert d.stuck(Watched()) == "no_input_timer_silent"


def test_a_dead_listener_is_stuck_at_once_except_while_transferring() -> None:
    c = Clock()
    d = dog(c)
    d.enter("listening")
    assert d.stuck(Watched(listening_alive=False)) == "listener_stopped"
    d.enter("transferring")
    c.t += 600
    assert d.stuck(Watched(listening_alive=False)) is None


def test_a_long_prompt_is_fine_a_starved_one_is_not() -> None:
    c = Clock()
    d = dog(c)
    d.enter("speaking")
    c.t += 120  # a two-minute read-back, audio flowing
    assert d.stuck(Watched(starved=0.0)) is None
    assert d.stuck(Watched(starved=8.5)) == "speech_stalled"


def test_deciding_has_its_own_limit() -> None:
    c = Clock()
    d = dog(c)
    d.enter("deciding")
    c.t += 44
    assert d.stuck(Watched()) is None
    c.t += 2
    assert d.stuck(Watched()) == "decide_timeout"
