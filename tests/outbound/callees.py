"""Test callees of a campaign on the real stack: a person who hears the reminder out and answers,
and how much of the agent's speech a callee heard."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable
from typing import Any

import numpy as np

from ari_app.outbound.dnc import DncList
from ari_app.outbound.registry import Campaigns
from ari_app.testcaller.agent_phone import AgentCall, AgentPhone
from ari_app.testcaller.rtp_peer import RtpPeer
from tests.stack.test_transfer import heard, wait_for


def voiced_since(peer: RtpPeer, since: float, until: float = float("inf")) -> float:
    """Seconds of the agent's speech the callee heard in [since, until)."""
    pcm = heard(peer, since, until).astype(np.float32)
    frames = pcm[: len(pcm) // 160 * 160].reshape(-1, 160)
    return float((np.sqrt((frames**2).mean(axis=1)) > 300).sum() * 0.02) if len(frames) else 0.0


async def after_agent_spoke(call: AgentCall, quiet_s: float = 1.2, timeout: float = 40.0) -> None:
    """Wait until the agent has said something and then gone quiet (the callee's turn)."""
    t0 = time.monotonic()
    spoke = False
    while time.monotonic() - t0 < timeout:
        now = time.monotonic()
        spoke = spoke or voiced_since(call.rtp, t0) > 1.0
        if spoke and voiced_since(call.rtp, now - quiet_s) == 0.0:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the agent never finished speaking to the callee: {profile(call.rtp, t0)}")


def profile(peer: RtpPeer, since: float) -> str:
    """What the callee heard, second by second since ``since``: voiced seconds, packets."""
    out = []
    for i in range(int(time.monotonic() - since)):
        a = since + i
        n = sum(1 for p in peer.received if a <= p.arrival < a + 1)
        out.append(f"{i}s:{voiced_since(peer, a, a + 1):.1f}/{n}")
    return " ".join(out)


async def person(phone: AgentPhone, number: str, *lines: np.ndarray) -> AgentCall:
    """A callee who hears the agent out before each of its answers, until the agent hangs up."""
    call = await phone.next_call_to(number, timeout=90)
    await wait_for(lambda: call.answered_at is not None, 10, f"{number} answers")
    for line in lines:
        await after_agent_spoke(call)
        await call.play(line, "answer")
    await wait_for(call.ended.is_set, 40, f"the agent ends the call to {number}")
    return call


async def forget_campaign(
    redis: Any, campaigns: Campaigns, name: str, dnc_numbers: Iterable[str] = ()
) -> None:
    """Remove a test campaign and the numbers it put on the DNC list: the embedded Redis keeps its
    data between runs (append-only file), and the next run must start from nothing."""
    keys = campaigns.keys
    async for key in redis.scan_iter(match=f"{keys.campaign(name)}*"):
        await redis.delete(key)
    await redis.srem(keys.campaigns, name)
    for number in dnc_numbers:
        await DncList(redis, keys, campaigns.cipher).remove(number)


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:6]}"
