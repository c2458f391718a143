"""Fault suite, the parts around the agent fail: the ARI websocket is cut mid-call, Asterisk
restarts under a live call, Redis is down for 30 s while a caller talks, the VAD engine breaks.
The agent runs in-process (the same Service `ari-app serve` runs) on the real stack with a real SIP
caller. For each: what the caller hears, that nothing of the call is left, and that the agent takes
the next call."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import numpy as np
import pytest

from ari_app import stack
from ari_app.config import Settings
from ari_app.testcaller.caller import Silence, WaitForAgent
from tests.faults.leaks import keys_expire
from tests.faults.test_in_call_faults import (
    HOURS_Q,
    assert_released,
    ended_record,
    fails_over_to_a_person,
    only_session,
    service,
    svc,
    voices,
)
from tests.stack.test_transfer import ari, call_task, heard, phone_factory, say, transcribe, wait_for

pytestmark = pytest.mark.stack
__all__ = ["ari", "phone_factory", "service", "svc", "voices"]  # fixtures, imported for pytest


class BrokenVad:
    """A VAD engine that fails on every frame (a corrupt model, a runtime that lost its session)."""

    name = "broken"

    def speech_probability(self, frame: bytes) -> float:
        raise RuntimeError("vad crashed")

    def reset(self) -> None:
        pass


async def answered_hours(svc, settings: Settings, voices: dict[str, np.ndarray]) -> None:  # type: ignore[no-untyped-def]
    """A fresh call is greeted and its question answered: the agent is fully back."""
    report = await asyncio.wait_for(
        call_task(settings, [WaitForAgent(timeout_s=20), say(voices, HOURS_Q), WaitForAgent(timeout_s=15)]),
        60,
    )
    words = await transcribe(svc, heard(report.rtp, report.t0))
    assert "thanks for calling" in words, words
    assert "monday" in words or "8" in words or "eight" in words, words


async def test_broken_vad_apologises_and_queues(svc, settings, ari, phone_factory, monkeypatch) -> None:
    monkeypatch.setattr(svc.deps, "vad_factory", BrokenVad)
    await fails_over_to_a_person(
        svc, settings, ari, phone_factory, "listener_stopped", "something went wrong"
    )


async def test_websocket_cut_mid_call_the_caller_is_still_answered(svc, settings, ari, voices) -> None:
    events = svc.manager.events
    before = events.reconnects
    caller = call_task(
        settings, [WaitForAgent(timeout_s=20), say(voices, HOURS_Q), WaitForAgent(timeout_s=15)]
    )
    await wait_for(lambda: bool(svc.manager.calls), 10, "the service takes the call")
    sid = only_session(svc)
    await asyncio.sleep(1.0)
    await events.drop_connection()  # while the greeting plays
    report = await asyncio.wait_for(caller, 60)
    assert events.reconnects > before
    words = await transcribe(svc, heard(report.rtp, report.t0))
    assert "monday" in words or "8" in words or "eight" in words, words  # answered after the cut
    rec = await ended_record(svc, sid)
    assert rec.end_reason == "caller_hangup", rec.end_reason
    await assert_released(svc, ari, sid)


async def test_asterisk_restart_releases_the_call_and_the_next_call_works(svc, settings, ari, voices) -> None:
    events = svc.manager.events
    before = events.reconnects
    caller = call_task(settings, [WaitForAgent(timeout_s=20), Silence(8.0)])
    await wait_for(lambda: bool(svc.manager.calls), 10, "the service takes the call")
    sid = only_session(svc)
    await asyncio.sleep(1.0)
    t0 = time.monotonic()
    await asyncio.to_thread(stack.restart_asterisk, settings)  # every channel it held is gone
    print(f"asterisk restarted in {time.monotonic() - t0:.1f} s")
    await wait_for(lambda: events.reconnects > before and events.connected.is_set(), 20, "ARI reconnected")
    await wait_for(lambda: not svc.manager.calls, 15, "the agent let go of the dead call")
    assert not svc.manager.ports.in_use, f"RTP ports still held: {sorted(svc.manager.ports.in_use)}"
    rec = await ended_record(svc, sid)
    assert rec.status == "ended", rec.status
    await keys_expire(svc.store, sid)
    caller.cancel()  # its dialog died with the old Asterisk
    await asyncio.gather(caller, return_exceptions=True)
    await answered_hours(svc, settings, voices)
    assert svc.readiness()["ari_connected"]


async def test_redis_down_for_30_s_the_call_goes_on_and_nothing_is_lost(svc, settings, ari, voices) -> None:
    away_s = 30.0
    script = [WaitForAgent(timeout_s=20), say(voices, HOURS_Q), WaitForAgent(timeout_s=15),
              say(voices, HOURS_Q), WaitForAgent(timeout_s=15), Silence(away_s - 12), say(voices, HOURS_Q),
              WaitForAgent(timeout_s=15, quiet_s=1.5)]  # fmt: skip
    caller = call_task(settings, script)
    await wait_for(lambda: bool(svc.manager.calls), 10, "the service takes the call")
    sid = only_session(svc)
    await asyncio.sleep(1.0)  # the record exists; Redis goes away during the greeting
    down_at = time.monotonic()
    os.kill(stack.read_state(settings).redis_pid, signal.SIGTERM)
    await asyncio.sleep(away_s)
    assert svc.manager.calls, "the call did not survive Redis being away"
    await asyncio.to_thread(stack.restart_redis, settings)
    print(f"redis was away for {time.monotonic() - down_at:.1f} s")
    report = await asyncio.wait_for(caller, 60)
    answers = [r for r in report.responses() if r.caller_stopped > down_at]
    assert len(answers) == 3, report.to_dict()["responses"]
    assert all(r.agent_started is not None for r in answers), report.to_dict()["responses"]
    rec = await ended_record(svc, sid, timeout=20)
    caller_said = [e.text for e in rec.transcript if e.speaker == "caller"]
    agent_said = [e.text for e in rec.transcript if e.speaker == "agent"]
    assert len(caller_said) == 3, caller_said  # the turns made while Redis was away reached it
    # every turn reached Redis; the words of each reply depend on what the ASR heard
    assert sum("Monday to Friday" in t for t in agent_said) >= 2, agent_said
    await assert_released(svc, ari, sid)
    await wait_for(lambda: svc.readiness()["redis"], 10, "readiness says Redis is back")
