"""Crash takeover on the real stack: the agent runs as a separate process, is SIGKILLed between
two turns of a real SIP call, and a new instance picks the call up where it was — once."""

from __future__ import annotations

import asyncio
import time

import pytest

from ari_app.agent.voice import RESUME_APOLOGY
from ari_app.config import Settings
from ari_app.testcaller.caller import Dtmf, Silence, WaitForAgent, place_call
from tests.stack.agent_proc import (
    ASK,
    DOB,
    LEASE_TTL,
    NEW_DATE,
    SWEEP_INTERVAL,
    AgentFleet,
    awaiting_slot,
    caller_lines,
    fleet,
    read_record,
    wait_for_record,
)

pytestmark = pytest.mark.stack
__all__ = ["fleet"]  # the fixture, imported for pytest


async def test_killed_agent_call_resumes_on_a_new_instance(fleet: AgentFleet, settings: Settings) -> None:
    say = await caller_lines(ASK, DOB, NEW_DATE)
    a = await fleet.start("a")
    script = [
        WaitForAgent(), say[ASK], WaitForAgent(), Dtmf("5551234567#"), WaitForAgent(), say[DOB],
        WaitForAgent(quiet_s=1.5),
        # The agent is killed here; the next thing the caller hears is the resumed agent.
        WaitForAgent(timeout_s=45, quiet_s=1.0), say[NEW_DATE], WaitForAgent(quiet_s=1.5),
    ]  # fmt: skip
    caller = asyncio.create_task(
        place_call(settings.stack.extension, script, listen_s=0, sip_port=settings.stack.sip_port)
    )
    # Between turns: the verified caller has been asked for the new date, and that turn is saved.
    before = await wait_for_record(
        fleet.store, lambda r: awaiting_slot(r) == "new_date", 60, "the new-date question"
    )
    a.kill()
    killed_at = time.monotonic()
    b = await fleet.start("b")
    report = await asyncio.wait_for(caller, 120)

    assert "takeover.adopted" in b.log, b.tail()
    winner = b
    rec = await read_record(fleet.store, before.session_id)
    assert rec.owner_instance == winner.instance_id
    assert before.session_id in winner.log
    # The caller heard the resumed agent within lease TTL + sweep interval (+ start-up, set-up, TTS).
    resumed_at = next(s for s, _ in report.heard if s > killed_at)
    ready = (winner.ready_at or 0) - killed_at
    bound = max(LEASE_TTL, ready) + SWEEP_INTERVAL + 4.0
    print(f"kill -> resume prompt heard: {resumed_at - killed_at:.2f} s "
          f"(adopter ready after {ready:.2f} s, bound {bound:.1f} s)")  # fmt: skip
    assert resumed_at - killed_at <= bound
    # It picked up where the dead instance was: the resume prompt repeats the last question (with
    # the customer's name from the verification before the crash), and the next answer fills the
    # next slot with the earlier ones kept.
    agent_lines = [e.text for e in rec.transcript if e.speaker == "agent"]
    resume_line = next(t for t in agent_lines if t.startswith(RESUME_APOLOGY))
    assert "Thanks Dana" in resume_line and "What day would you like" in resume_line, resume_line
    assert not any("Thanks for calling" in t for t in agent_lines[agent_lines.index(resume_line) :])
    assert rec.slots.get("phone") == "5551234567", rec.slots
    assert rec.slots.get("new_date"), f"the answer after the takeover was not used: {rec.slots}"
    assert rec.turn > before.turn


async def test_graceful_restart_hands_the_call_over(fleet: AgentFleet, settings: Settings) -> None:
    """SIGTERM (a restart, a deploy): the call is not hung up; the next instance continues it."""
    say = await caller_lines(ASK, DOB)
    a = await fleet.start("a")
    script = [
        WaitForAgent(), say[ASK], WaitForAgent(), Dtmf("5551234567#"), WaitForAgent(quiet_s=1.5),
        WaitForAgent(timeout_s=45, quiet_s=1.0),  # the restarted agent picks the call up
        say[DOB], WaitForAgent(quiet_s=1.5),
    ]  # fmt: skip
    caller = asyncio.create_task(
        place_call(settings.stack.extension, script, listen_s=0, sip_port=settings.stack.sip_port)
    )
    before = await wait_for_record(fleet.store, lambda r: awaiting_slot(r) == "dob", 60, "the DOB question")
    await a.stop()
    assert "calls.handed_over" in a.log, a.tail()
    b = await fleet.start("b")
    report = await asyncio.wait_for(caller, 120)
    assert report.sip.ended_by == "local", "the caller was hung up during the restart"
    assert "takeover.adopted" in b.log, b.tail()
    rec = await read_record(fleet.store, before.session_id)
    assert rec.owner_instance == b.instance_id
    assert rec.status == "active" or rec.end_reason != "shutdown"
    assert rec.slots.get("phone") == "5551234567" and rec.slots.get("dob"), rec.slots


async def test_two_new_instances_never_drive_the_call_together(fleet: AgentFleet, settings: Settings) -> None:
    """After a crash two instances race for the call. Asterisk gives the ARI app's events to the
    one that connected last; if the other had adopted the call first, it hands it over (it would
    be deaf to hang-ups and keys) and the live one adopts it. At the end exactly one drives it."""
    say = await caller_lines(ASK)
    a = await fleet.start("a")
    script = [
        WaitForAgent(), say[ASK], WaitForAgent(quiet_s=1.5),
        WaitForAgent(timeout_s=45, quiet_s=1.0),  # resumed by whichever instance adopts first
        Silence(6.0),  # time for a hand-over to settle
    ]  # fmt: skip
    caller = asyncio.create_task(
        place_call(settings.stack.extension, script, listen_s=0, sip_port=settings.stack.sip_port)
    )
    await wait_for_record(fleet.store, lambda r: awaiting_slot(r) == "phone", 60, "the phone question")
    a.kill()
    killed_at = time.monotonic()
    b, c = await asyncio.gather(fleet.start("b"), fleet.start("c"))
    report = await asyncio.wait_for(caller, 120)
    assert any(s > killed_at for s, _ in report.heard), "the caller never heard the agent again"
    adopted = [p for p in (b, c) if "takeover.adopted" in p.log]
    still_driving = [p for p in adopted if "calls.handed_over" not in p.log]
    logs = f"B:\n{b.tail()}\nC:\n{c.tail()}"
    assert adopted, f"nobody adopted the call\n{logs}"
    assert len(still_driving) == 1, f"{len(still_driving)} instances drive the call\n{logs}"
    assert "ari.events.replaced" not in still_driving[0].log, logs
