"""A campaign survives its agent: ``ari-app serve`` is killed (SIGKILL) while it talks to the
first callee; a new instance takes the call over (the callee hears the apology and the reminder
again), records it once it ends, and calls the rest — and nobody is called twice."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import yaml

from ari_app.config import Settings
from ari_app.demo import caller_voice
from ari_app.outbound.registry import Campaigns
from ari_app.testcaller.agent_phone import AgentPhone, CalleePlan
from tests.faults.leaks import nothing_left_in_asterisk
from tests.outbound.callees import person, voiced_since
from tests.stack.agent_proc import AgentFleet, fleet
from tests.stack.test_transfer import ari, wait_for

pytestmark = pytest.mark.stack
__all__ = ["ari", "fleet"]  # fixtures, imported for pytest

HELLO, YES = "Hello?", "yes I'll be there"
NUMBERS = ("5550201", "5550202", "5550203")


def campaign(tmp_path: Path) -> Path:
    rows = ["id,number,name,provider,appointment_id,appt_date,appt_time"]
    rows += [f"c{i},{n},Maria,Dr. Alvarez,1,2030-03-04,10:00" for i, n in enumerate(NUMBERS, 1)]
    (tmp_path / "contacts.csv").write_text("\n".join(rows) + "\n")
    spec = {"name": "restart-test", "flow": "appointment_reminder", "contacts": "contacts.csv",
            "caller_id": "5551000", "timezone": "UTC",
            "window": {"start": "00:00", "end": "23:59", "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]},
            "pacing": {"max_concurrent": 1, "calls_per_second": 1}, "ring_timeout_s": 10}  # fmt: skip
    (tmp_path / "campaign.yaml").write_text(yaml.safe_dump(spec))
    return tmp_path / "campaign.yaml"


async def test_agent_killed_mid_campaign_nobody_is_called_twice(fleet: AgentFleet, settings: Settings, ari,
                                                                tmp_path: Path) -> None:  # fmt: skip
    say = await caller_voice([HELLO, YES])
    plans = {n: CalleePlan("answer", 0.5, say[HELLO]) for n in NUMBERS}
    phone = await AgentPhone("127.0.0.1", settings.stack.callee_port, plans=plans).start()
    try:
        a = await fleet.start("a")
        campaigns = Campaigns(fleet.store.redis.client, fleet.store.keys.prefix, fleet.store.protector.cipher)
        flows = {"appointment_reminder": ["name", "provider", "appointment_id", "appt_date", "appt_time"]}
        await campaigns.start(campaign(tmp_path), flows)
        first = await phone.next_call_to(NUMBERS[0], timeout=60)
        await wait_for(lambda: first.answered_at is not None, 10, "the first callee answers")
        t0 = time.monotonic()
        while voiced_since(first.rtp, first.answered_at) < 2.0:  # the reminder is being read out
            assert time.monotonic() - t0 < 30, "the agent never spoke to the first callee"
            await asyncio.sleep(0.1)
        a.kill()
        b = await fleet.start("b")
        await b.wait_log("takeover.adopted", 30)
        adopted = time.monotonic()
        deadline = adopted + 15
        while voiced_since(first.rtp, adopted) < 1.5:  # the apology and the reminder, again
            assert time.monotonic() < deadline, f"the callee hears nothing after the takeover\n{b.tail()}"
            await asyncio.sleep(0.1)
        await first.hangup()
        for n in NUMBERS[1:]:
            await person(phone, n, say[YES])
        state = await campaigns.state("restart-test")
        deadline = time.monotonic() + 90
        while (st := await state.status()).status != "done":
            assert time.monotonic() < deadline, (st, b.tail())
            await asyncio.sleep(0.5)
        dialled = [c.number for c in phone.calls]
        assert sorted(dialled) == sorted(NUMBERS), f"called twice or not at all: {dialled}"
        results = {r.number: r for r in await state.results()}
        r = results[NUMBERS[0]]  # recorded by the new instance once the adopted call ended
        assert (r.status, r.outcome, r.attempts) == ("done", "answered_human", 1), r
        assert r.flow_result and "after an agent restart" in r.flow_result.get("note", ""), r
        assert all(results[n].flow_result["outcome"] == "confirmed" for n in NUMBERS[1:]), results
        assert "campaign.recovered" in b.log, b.tail()
        await nothing_left_in_asterisk(ari)
    finally:
        await phone.stop()
