"""Redis trouble with the agent as a real process on the real stack: Redis restarting mid-call,
Redis missing at start-up, and a garbled call record found at takeover."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest
import redis.asyncio as aioredis

from ari_app import stack
from ari_app.agent.voice import RESUME_APOLOGY
from ari_app.config import Settings
from ari_app.testcaller.caller import Dtmf, WaitForAgent, place_call
from tests.stack.agent_proc import (
    ASK,
    DOB,
    NEW_DATE,
    SERVE,
    AgentFleet,
    awaiting_slot,
    caller_lines,
    fleet,
    free_port,
    read_record,
    wait_for_record,
)

pytestmark = pytest.mark.stack
__all__ = ["fleet"]  # the fixture, imported for pytest

GREETING = "Thanks for calling"


async def test_call_goes_on_while_redis_restarts(fleet: AgentFleet, settings: Settings) -> None:
    say = await caller_lines(ASK, DOB, NEW_DATE)
    agent = await fleet.start("a")
    script = [
        WaitForAgent(), say[ASK], WaitForAgent(), Dtmf("5551234567#"), WaitForAgent(quiet_s=1.0),
        say[DOB], WaitForAgent(quiet_s=1.5), say[NEW_DATE], WaitForAgent(quiet_s=1.5),
    ]  # fmt: skip
    caller = asyncio.create_task(
        place_call(settings.stack.extension, script, listen_s=0, sip_port=settings.stack.sip_port)
    )
    before = await wait_for_record(fleet.store, lambda r: awaiting_slot(r) == "dob", 60, "the dob question")
    # Redis goes away while the caller answers; it comes back once that turn has been handled.
    restart_began = time.monotonic()
    os.kill(stack.read_state(settings).redis_pid, signal.SIGTERM)
    await agent.wait_log("'filled': {'dob'", 30)
    await asyncio.to_thread(stack.restart_redis, settings)
    print(f"redis was away for {time.monotonic() - restart_began:.2f} s")
    report = await asyncio.wait_for(caller, 90)

    # The agent kept answering: both turns after the restart got a spoken reply.
    after = [r for r in report.responses() if r.caller_stopped > restart_began]
    assert len(after) == 2, report.to_dict()["sent"]
    assert all(r.agent_started is not None for r in after), report.to_dict()["responses"]
    # ... and those turns reached Redis (the one made while it was away too), in order and once each.
    rec = await read_record(fleet.store, before.session_id)
    caller_said = [e.text for e in rec.transcript if e.speaker == "caller"]
    agent_said = [e.text for e in rec.transcript if e.speaker == "agent"]
    assert len(caller_said) == 4, caller_said  # ask, keys, dob, new date
    assert "wednesday" in caller_said[-1].lower(), caller_said
    assert any("Which time would you like" in t for t in agent_said), agent_said
    assert rec.turn == before.turn + 2, (before.turn, rec.turn)
    assert rec.slots.get("new_date") and rec.slots.get("phone") == "5551234567", rec.slots
    assert "session.write_failed" not in agent.log
    assert "is unreachable" in agent.log and "is back after" in agent.log, agent.tail()


async def test_agent_refuses_to_start_without_redis(settings: Settings) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    proc = await asyncio.create_subprocess_exec(
        *SERVE, env={**os.environ, "ARI_APP_REDIS__URL": url},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    text = out.decode(errors="replace")
    assert proc.returncode != 0, text
    assert f"cannot reach Redis at {url}" in text, text
    assert "Traceback" not in text and "╭" not in text, text  # no plain or rich traceback


async def test_garbled_record_at_takeover_restarts_the_call(
    fleet: AgentFleet, redis: aioredis.Redis, settings: Settings
) -> None:
    say = await caller_lines(ASK)
    a = await fleet.start("a")
    script = [
        WaitForAgent(), say[ASK], WaitForAgent(), Dtmf("5551234567#"), WaitForAgent(quiet_s=1.0),
        # killed here; the new instance cannot read the record and starts over
        WaitForAgent(timeout_s=45, quiet_s=1.0), say[ASK], WaitForAgent(quiet_s=1.5),
    ]  # fmt: skip
    caller = asyncio.create_task(
        place_call(settings.stack.extension, script, listen_s=0, sip_port=settings.stack.sip_port)
    )
    before = await wait_for_record(fleet.store, lambda r: awaiting_slot(r) == "dob", 60, "the dob question")
    a.kill()
    killed_at = time.monotonic()
    await redis.hset(fleet.store.keys.call(before.session_id), "conversation_state", '{"frames": [tru')
    b = await fleet.start("b")
    report = await asyncio.wait_for(caller, 90)

    assert "takeover.record_unreadable" in b.log and "takeover.adopted" in b.log, b.tail()
    assert any(s > killed_at for s, _ in report.heard), "the caller heard nothing after the crash"
    # The record is whole again and tells the story: apology, greeting, the caller's request
    # handled afresh (asked for the phone number again).
    rec = await read_record(fleet.store, before.session_id)
    agent_said = [e.text for e in rec.transcript if e.speaker == "agent"]
    assert agent_said[:2] == [RESUME_APOLOGY, agent_said[1]] and GREETING in agent_said[1], agent_said
    assert any("phone number on your account" in t for t in agent_said[2:]), agent_said
    assert rec.owner_instance == b.instance_id
