"""Fault suite, the process dies: the agent runs as a real `ari-app serve` process and is killed
(SIGKILL) or restarted (SIGTERM) in a phase of a real SIP call; a new instance takes the call
over. For each: what the caller hears next, that a webhook in flight ran once, and that a person
already talking to the caller is never hung up."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from ari_app.agent.voice import RESUME_APOLOGY, STILL_TRANSFERRING
from ari_app.ari import AriClient
from ari_app.config import Settings
from ari_app.testcaller.agent_phone import AgentPhone
from ari_app.testcaller.caller import Dtmf, Silence, Utterance, WaitForAgent, place_call
from tests.faults.leaks import keys_expire, nothing_left_in_asterisk
from tests.stack.agent_proc import (
    ASK,
    AgentFleet,
    awaiting_slot,
    caller_lines,
    read_record,
    running_fleet,
    wait_for_record,
)
from tests.stack.test_transfer import CALLER_TONE_HZ, hears_tone, tone, wait_for

pytestmark = pytest.mark.stack

REFUND_ASK = "I was charged twice last month and I need a refund"
DOB = "April twelfth nineteen eighty five"
YES = "yes please"
ASK_PERSON = "I want to talk to a person"
REFUND_DELAY_S = 4.0  # the first refund request is slow: the agent is killed while it runs


@pytest.fixture
async def ari(settings: Settings) -> AsyncIterator[AriClient]:
    async with AriClient(settings.ari) as client:
        yield client


class RefundCounter:
    """Backend middleware, outermost: makes the first refund slow, and counts the refunds the
    backend really applied (answered 200 and not replayed from its idempotency store)."""

    def __init__(self) -> None:
        self.applied = 0
        self.started = asyncio.Event()

    @web.middleware
    async def middleware(self, request: web.Request, handler):  # type: ignore[no-untyped-def]
        if request.path != "/refunds":
            return await handler(request)
        first = not self.started.is_set()
        self.started.set()
        if first:
            await asyncio.sleep(REFUND_DELAY_S)
        response = await handler(request)
        if response.status == 200 and response.headers.get("Idempotent-Replayed") != "true":
            self.applied += 1
        return response


@pytest.fixture
async def fleet(asterisk, redis, settings: Settings, tmp_path: Path) -> AsyncIterator[AgentFleet]:
    async with running_fleet(settings, redis, tmp_path) as f:
        yield f


async def ended(fleet: AgentFleet, sid: str, timeout: float = 15.0):  # type: ignore[no-untyped-def]
    """The record once the instance driving the call has ended it (transcript complete)."""
    deadline = time.monotonic() + timeout
    while True:
        rec = await read_record(fleet.store, sid)
        if rec.status == "ended" or time.monotonic() > deadline:
            return rec
        await asyncio.sleep(0.2)


def call(settings: Settings, script: list) -> asyncio.Task:  # type: ignore[type-arg]
    return asyncio.create_task(
        place_call(settings.stack.extension, script, listen_s=0, sip_port=settings.stack.sip_port)
    )


def said_by_agent(rec, text: str) -> bool:  # type: ignore[no-untyped-def]
    """``text`` is in an agent line of the record: that turn has been spoken (finish_turn)."""
    return any(e.speaker == "agent" and text in e.text for e in rec.transcript)


async def stop(agent, how: str) -> None:  # type: ignore[no-untyped-def]
    if how == "SIGTERM":  # a restart: the instance hands its calls over as it goes
        await agent.stop()
    else:
        agent.kill()


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
@pytest.mark.parametrize("phase", ["greeting", "speaking", "listening"])
async def test_restart_in_a_phase_resumes_at_that_question(fleet: AgentFleet, settings: Settings, ari,
                                                           phase: str, how: str) -> None:  # fmt: skip
    """The turn is saved before it is spoken: stopped in the greeting, the caller is greeted
    again; stopped while the phone question is spoken or awaited, the caller gets that question
    again (not the greeting, not the question before). Nothing is left once the call ends."""
    say = await caller_lines(ASK)
    a = await fleet.start("a")
    if phase == "greeting":
        script = [WaitForAgent(quiet_s=1.0), WaitForAgent(timeout_s=45, quiet_s=1.5), say[ASK],
                  WaitForAgent(quiet_s=1.5), Dtmf("5551234567#"), WaitForAgent(quiet_s=1.5)]  # fmt: skip
    else:
        script = [WaitForAgent(), say[ASK], WaitForAgent(quiet_s=1.0),  # the question (cut off while speaking)
                  WaitForAgent(timeout_s=45, quiet_s=1.5),  # the resumed agent
                  Dtmf("5551234567#"), WaitForAgent(quiet_s=1.5)]  # fmt: skip
    caller = call(settings, script)
    if phase == "greeting":
        rec = await wait_for_record(fleet.store, lambda r: True, 60, "the call record")
        await asyncio.sleep(0.8)
    elif phase == "speaking":
        rec = await wait_for_record(
            fleet.store, lambda r: awaiting_slot(r) == "phone", 60, "the phone question"
        )
        await asyncio.sleep(0.6)
    else:
        rec = await wait_for_record(fleet.store, lambda r: said_by_agent(r, "phone number"), 60,
                                    "the phone question spoken")  # fmt: skip
        await asyncio.sleep(0.3)
    await stop(a, how)
    b = await fleet.start("b")
    await asyncio.wait_for(caller, 120)
    rec = await ended(fleet, rec.session_id)
    agent_lines = [e.text for e in rec.transcript if e.speaker == "agent"]
    resumed = [i for i, t in enumerate(agent_lines) if t.startswith(RESUME_APOLOGY)]
    assert resumed, f"{agent_lines}\nB:\n{b.tail()}"
    after = " ".join(agent_lines[resumed[0] :])
    if phase == "greeting":
        assert "Thanks for calling" in after, agent_lines
    else:
        assert "phone number" in agent_lines[resumed[0]], agent_lines
        assert "Thanks for calling" not in after, agent_lines
    assert rec.slots.get("phone") == "5551234567", rec.slots
    assert "takeover.adopted" in b.log
    await nothing_left_in_asterisk(ari)
    await keys_expire(fleet.store, rec.session_id)


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
async def test_restart_mid_webhook_the_refund_happens_once(settings: Settings, asterisk, redis, tmp_path,
                                                           ari, how: str) -> None:  # fmt: skip
    counter = RefundCounter()
    say = await caller_lines(REFUND_ASK, DOB, YES)
    async with running_fleet(settings, redis, tmp_path, [counter.middleware]) as fleet:
        a = await fleet.start("a")
        script = [WaitForAgent(), say[REFUND_ASK], WaitForAgent(), Dtmf("5551234567#"), WaitForAgent(),
                  say[DOB], WaitForAgent(quiet_s=1.5), say[YES],
                  WaitForAgent(timeout_s=60, quiet_s=1.5),  # the resumed agent asks again
                  say[YES], WaitForAgent(timeout_s=20, quiet_s=1.5)]  # fmt: skip
        caller = call(settings, script)
        await asyncio.wait_for(counter.started.wait(), 90)
        await asyncio.sleep(0.5)
        await stop(a, how)  # the refund request is in flight
        b = await fleet.start("b")
        await asyncio.wait_for(caller, 150)
        sid = next(
            iter(await fleet.store.redis.read(lambda r: r.smembers(fleet.store.keys.active))), b""
        ).decode()
        assert counter.applied == 1, f"refund applied {counter.applied} times"
        assert "takeover.adopted" in b.log, b.tail()
        if sid:
            rec = await ended(fleet, sid)
            said = " ".join(e.text for e in rec.transcript if e.speaker == "agent")
            assert "refunded" in said.lower(), said
            events = [e.type for e in await fleet.store.events(sid)]
            assert "tool_finished" in events, events


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
async def test_restart_while_bridged_keeps_the_person_on_the_line(fleet: AgentFleet, settings: Settings, ari,
                                                                  how: str) -> None:  # fmt: skip
    say = await caller_lines(ASK_PERSON)
    phone = await AgentPhone("127.0.0.1", settings.stack.agent_port, mode="answer", ring_delay_s=0.5).start()
    try:
        a = await fleet.start("a")
        script = [WaitForAgent(), say[ASK_PERSON], Silence(2.0), Utterance(pcm=tone(CALLER_TONE_HZ, 30))]
        caller = call(settings, script)
        agent = await phone.next_call(timeout=60)
        await wait_for(lambda: agent.answered_at is not None, 5, "the person answers")
        await wait_for(
            hears_tone(agent.rtp, CALLER_TONE_HZ, agent.answered_at), 30, "the person hears the caller"
        )
        rec = await wait_for_record(
            fleet.store, lambda r: r.status == "transferred", 10, "the transfer recorded"
        )
        assert rec.agent_channel_id and rec.bridge_id, (rec.agent_channel_id, rec.bridge_id)
        await stop(a, how)
        b = await fleet.start("b")
        await b.wait_log("takeover.adopted", 20)
        stopped = time.monotonic()
        await asyncio.sleep(3.0)
        assert not agent.ended.is_set(), f"the person was hung up by the {how} restart"
        assert hears_tone(agent.rtp, CALLER_TONE_HZ, stopped)(), "caller and person no longer connected"
        report = await asyncio.wait_for(caller, 60)  # the caller hangs up at the end of the script
        await wait_for(agent.ended.is_set, 5, "the person's leg ends after the caller hangs up")
        assert report.sip.ended_by == "local"
        await nothing_left_in_asterisk(ari)
        rec = await ended(fleet, rec.session_id)
        assert rec.status == "ended" and rec.end_reason == "transferred", (rec.status, rec.end_reason)
        await keys_expire(fleet.store, rec.session_id)
    finally:
        await phone.stop()


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
@pytest.mark.parametrize("phase", ["ringing", "whisper"])
async def test_restart_while_putting_through_rings_the_person_again(fleet: AgentFleet, settings: Settings,
                                                                    ari, phase: str, how: str) -> None:  # fmt: skip
    """Stopped while the person's phone rings, or while they hear the whisper (caller on hold):
    the new instance rings again, tells the caller, and connects them."""
    say = await caller_lines(ASK_PERSON)
    ring_delay = 6.0 if phase == "ringing" else 0.5
    phone = await AgentPhone(
        "127.0.0.1", settings.stack.agent_port, mode="answer", ring_delay_s=ring_delay
    ).start()
    try:
        a = await fleet.start("a")
        script = [WaitForAgent(), say[ASK_PERSON], Silence(2.0), Utterance(pcm=tone(CALLER_TONE_HZ, 40))]
        caller = call(settings, script)
        first = await phone.next_call(timeout=60)
        if phase == "whisper":
            await wait_for(lambda: first.answered_at is not None, 5, "the person answers")
            await asyncio.sleep(0.8)  # the whisper plays to them
        await stop(a, how)
        b = await fleet.start("b")
        second = await phone.next_call(timeout=45)
        assert first.ended.is_set(), "the first leg was not ended"
        await wait_for(lambda: second.answered_at is not None, 10, "the person answers the second ring")
        await wait_for(
            hears_tone(second.rtp, CALLER_TONE_HZ, second.answered_at), 30, "the person hears the caller"
        )
        await asyncio.wait_for(caller, 60)
        sid = second.header("X-IVA-Session")
        assert sid, second.headers
        rec = await ended(fleet, sid)
        agent_lines = [e.text for e in rec.transcript if e.speaker == "agent"]
        assert any(STILL_TRANSFERRING in t for t in agent_lines), agent_lines
        assert "takeover.adopted" in b.log
        await nothing_left_in_asterisk(ari)
        await keys_expire(fleet.store, sid)
    finally:
        await phone.stop()
