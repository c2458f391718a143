"""Crash takeover on the real stack: the agent runs as a separate process, is SIGKILLed between
two turns of a real SIP call, and a new instance picks the call up where it was — once."""

from __future__ import annotations

import asyncio
import time

import pytest

from ari_app.agent.voice import RESUME_APOLOGY
from ari_app.config import Settings
from ari_app.testcaller.caller import Dtmf, WaitForAgent, place_call
from tests.stack.agent_proc import (
    LEASE_TTL,
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

ASK = "I need to reschedule my appointment"
DOB = "April twelfth nineteen eighty five"
NEW_DATE = "next Wednesday"


async def test_killed_agent_call_resumes_on_exactly_one_new_instance(
    fleet: AgentFleet, settings: Settings
) -> None:
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
    b, c = await asyncio.gather(fleet.start("b"), fleet.start("c"))  # two live instances race
    report = await asyncio.wait_for(caller, 120)

    # Exactly one instance adopted the call; the record says it is the owner.
    adopted = [p for p in (b, c) if "takeover.adopted" in p.log]
    assert len(adopted) == 1, f"adopters: {[p.name for p in adopted]}\nB:\n{b.tail()}\nC:\n{c.tail()}"
    winner = adopted[0]
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
