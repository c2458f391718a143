"""Two Asterisk boxes, one worker pool, one Redis (issue: past one box). Box 1 is a second real
Asterisk 22 (ari_app/boxes.py: its own rootfs copy, SIP on stack.sip_port + 100, systemname
box1) whose outbound ARI websocket goes to the same HAProxy as the stack's own Asterisk.
Calls on both boxes are served by the same workers; on box 1 a worker killed mid-call is
replaced and the call goes on, and a warm transfer reaches the agent's phone. (The same two
things on box 0 are in test_workers.py.)"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from ari_app import boxes
from ari_app.config import Settings
from ari_app.testcaller.caller import Silence, Utterance, WaitForAgent
from tests.stack.agent_proc import ASK, LEASE_TTL, caller_lines, free_port, running_fleet
from tests.stack.test_workers import Balanced, balancer

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def box1(real_stack, settings: Settings) -> Iterator[boxes.BoxState]:
    state = boxes.up_box(settings, 1)
    yield state
    boxes.down_box(settings, 1)


@pytest.fixture
async def pool(box1, asterisk, redis, settings: Settings, tmp_path: Path) -> AsyncIterator[Balanced]:
    """Two workers behind HAProxy, where both boxes' outbound websockets connect."""
    async with running_fleet(settings, redis, tmp_path) as fleet:
        ports = [free_port() for _ in range(2)]
        b = Balanced(fleet, [], ports, settings)
        b.workers = [await b.start_worker(f"w{i}", p, wait=False) for i, p in enumerate(ports)]
        await asyncio.gather(*(w.wait_ready(240) for w in b.workers))
        async with balancer(settings, ports):
            yield b


def box1_sip(settings: Settings) -> int:
    return boxes.box_settings(settings, 1).stack.sip_port


def channels_served(pool: Balanced) -> list[str]:
    """The caller channel ids the workers accepted (worker.call ... accepted=True)."""
    lines = "\n".join(w.log for w in pool.workers).splitlines()
    return [m.group(1) for ln in lines if "worker.call " in ln and "accepted=True" in ln
            if (m := re.search(r"\bchannel=(\S+)", ln))]  # fmt: skip


async def test_both_boxes_are_served_by_the_same_workers(pool: Balanced, settings: Settings) -> None:
    on_box0 = pool.call([WaitForAgent(timeout_s=30)])
    on_box1 = pool.call([WaitForAgent(timeout_s=30)], sip_port=box1_sip(settings))
    reports = await asyncio.gather(on_box0, on_box1)
    for r in reports:
        assert r.sip.answered is not None and r.heard, (
            "a call on one of the boxes was not answered by a worker"
        )
    served = channels_served(pool)
    logs = "\n".join(w.tail(10) for w in pool.workers)
    # systemname prefixes box 1's uniqueids: the two boxes' channel ids cannot collide in Redis.
    assert any(c.startswith("box1-") for c in served), f"no box-1 channel among {served}\n{logs}"
    assert any(not c.startswith("box1-") for c in served), f"no box-0 channel among {served}\n{logs}"


async def test_a_worker_killed_mid_call_on_box1_is_replaced(pool: Balanced, settings: Settings) -> None:
    say = await caller_lines(ASK)
    script = [
        WaitForAgent(timeout_s=30), say[ASK], WaitForAgent(timeout_s=30, quiet_s=1.5),
        WaitForAgent(timeout_s=45, quiet_s=1.0),  # the adopting worker speaks again
        Silence(1.0),
    ]  # fmt: skip
    caller = asyncio.create_task(pool.call(script, sip_port=box1_sip(settings)))
    deadline = time.monotonic() + 60
    victim = None
    while victim is None:
        assert time.monotonic() < deadline, "no worker asked for the phone number"
        victim = next((w for w in pool.workers if "phone number on your account" in w.log), None)
        await asyncio.sleep(0.1)
    await asyncio.sleep(4.0)
    victim.kill()
    killed_at = time.monotonic()
    report = await asyncio.wait_for(caller, 120)
    after = [round(s - killed_at, 2) for s, _ in report.heard if s > killed_at]
    (other,) = [w for w in pool.workers if w is not victim]
    assert "takeover.adopted" in other.log and "worker.reconnected_call" in other.log, other.tail(20)
    reconnected = [ln for ln in other.log.splitlines() if "worker.reconnected_call" in ln]
    assert any("channel=box1-" in ln for ln in reconnected), reconnected
    assert after and after[0] < LEASE_TTL + 8, f"the caller heard nothing soon after the kill: {after}"


async def test_warm_transfer_on_box1(pool: Balanced, settings: Settings) -> None:
    from ari_app.testcaller.agent_phone import AgentPhone
    from tests.stack.test_transfer import (
        AGENT_TONE_HZ,
        CALLER_TONE_HZ,
        heard,
        hears_tone,
        tone,
        tone_share,
        wait_for,
    )

    person = "I want to talk to a person"
    say = await caller_lines(ASK, person)
    phone = await AgentPhone("127.0.0.1", settings.stack.agent_port, mode="answer", ring_delay_s=0.5).start()
    try:
        script = [
            WaitForAgent(timeout_s=30),
            say[person],
            Silence(2.0),
            Utterance(pcm=tone(CALLER_TONE_HZ, 40)),
        ]
        caller = asyncio.create_task(pool.call(script, sip_port=box1_sip(settings)))
        agent = await phone.next_call(timeout=60)
        while not agent.header("X-IVA-Session"):  # a late ring for an earlier test's queued caller
            agent = await phone.next_call(timeout=60)
        await wait_for(lambda: agent.answered_at is not None, 5, "agent phone answered")
        await wait_for(hears_tone(agent.rtp, CALLER_TONE_HZ, agent.answered_at), 30,
                       "the agent hears the box-1 caller after the whisper")  # fmt: skip
        spoke = time.monotonic()
        await agent.play(tone(AGENT_TONE_HZ, 1.5))
        await asyncio.sleep(2.0)
        await agent.hangup()
        report = await asyncio.wait_for(caller, 15)
    finally:
        await phone.stop()
    got = heard(report.rtp, spoke, spoke + 2.0)
    assert tone_share(got, AGENT_TONE_HZ) > 0.5, "the box-1 caller did not hear the agent"
    assert all("transfer.originate_failed" not in w.log for w in pool.workers)
