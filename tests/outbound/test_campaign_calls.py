"""A campaign on the real stack: the running Service dials real SIP callees through Asterisk
(``Local/<number>@ari-app-outbound`` -> endpoint ``callee``), one callee per behaviour — a person
who confirms, a person who opts out, a voicemail box with a beep, a busy line, a phone nobody
answers — plus a number on the do-not-call list and a contact outside its calling window. What
each callee heard and what the campaign recorded must agree."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from ari_app.demo import caller_voice
from ari_app.outbound.dnc import DncList
from ari_app.outbound.registry import Campaigns
from ari_app.testcaller.agent_phone import AgentPhone, CalleePlan
from ari_app.testcaller.greetings import MACHINE, flite_greeting
from tests.faults.leaks import nothing_left_in_asterisk
from tests.faults.test_in_call_faults import service, svc
from tests.outbound.callees import forget_campaign, person, unique, voiced_since
from tests.stack.test_transfer import ari, wait_for

pytestmark = pytest.mark.stack
__all__ = ["ari", "service", "svc"]  # fixtures, imported for pytest

ALL_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HELLO, YES, STOP = "Hello?", "yes I'll be there", "please stop calling this number"
CONFIRM, OPT_OUT, VOICEMAIL, BUSY, NOBODY, BLOCKED, ABROAD = (
    "5550101", "5550102", "5550103", "5550104", "5550105", "5550106", "5550107")  # fmt: skip
MESSAGE = "Hello {name}, this is Acme Health with a reminder of your appointment. Goodbye."


def campaign_file(tmp_path: Path, name: str, window_days: list[str]) -> Path:
    rows = ["id,number,name,timezone,provider,appointment_id,appt_date,appt_time"]
    contacts = [("c1", CONFIRM, "UTC"), ("c2", OPT_OUT, "UTC"), ("c3", VOICEMAIL, "UTC"), ("c4", BUSY, "UTC"),
                ("c5", NOBODY, "UTC"), ("c6", BLOCKED, "UTC"), ("c7", ABROAD, _other_day_zone())]  # fmt: skip
    rows += [f"{cid},{num},Maria,{tz},Dr. Alvarez,1,2030-03-04,10:00" for cid, num, tz in contacts]
    (tmp_path / "contacts.csv").write_text("\n".join(rows) + "\n")
    spec = {
        "name": name, "flow": "appointment_reminder", "contacts": "contacts.csv",
        "caller_id": '"Acme Health" <5551000>', "timezone": "UTC",
        "window": {"start": "00:00", "end": "23:59", "days": window_days},
        "pacing": {"max_concurrent": 3, "calls_per_second": 2},
        "retries": {"max_attempts": 2, "backoff_s": {"busy": 2, "no_answer": 2, "congestion": 2}},
        "ring_timeout_s": 6, "voicemail": MESSAGE, "pause_on_failures": 0,
    }  # fmt: skip
    path = tmp_path / "campaign.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def settled(counts: dict[str, int]) -> bool:
    """Everyone is through except the contact outside its window (pending until its day)."""
    return not counts.get("dialing") and not counts.get("deferred") and counts.get("pending", 0) <= 1


def _other_day_zone() -> str:
    """A zone where it is another day than in UTC now (the window allows UTC's day only)."""
    return "Etc/GMT+12" if datetime.now(UTC).hour < 12 else "Etc/GMT-13"


async def test_a_reminder_campaign_reaches_each_kind_of_callee(svc, settings, ari, tmp_path) -> None:
    say = await caller_voice([HELLO, YES, STOP])
    machine = flite_greeting(MACHINE[0], "machine", voice="rms", beep=True)
    plans = {
        CONFIRM: CalleePlan("answer", 0.5, say[HELLO]),
        OPT_OUT: CalleePlan("answer", 0.5, say[HELLO]),
        VOICEMAIL: CalleePlan("answer", 1.0, machine.pcm),
        BUSY: CalleePlan("reject", 0.3),
        NOBODY: CalleePlan("no-answer"),
    }
    phone = await AgentPhone("127.0.0.1", settings.stack.callee_port, plans=plans).start()
    redis = svc.store.redis.client
    campaigns = Campaigns(redis, svc.store.keys.prefix, svc.store.protector.cipher)
    dnc = DncList(redis, campaigns.keys, campaigns.cipher)
    name = unique("reminders")
    await dnc.add(BLOCKED, "asked by letter")
    try:
        today = datetime.now(UTC).strftime("%a").lower()
        flows = {n: list(f.inputs) for n, f in svc.deps.engine.flowset.flows.items()}
        started = await campaigns.start(campaign_file(tmp_path, name, [today]), flows)
        assert started.added == 7 and not started.errors, started
        confirm, opt_out = await asyncio.gather(
            person(phone, CONFIRM, say[YES]), person(phone, OPT_OUT, say[STOP])
        )
        mailbox = await phone.next_call_to(VOICEMAIL, timeout=60)
        await wait_for(mailbox.ended.is_set, 60, "the agent leaves its message and hangs up")
        state = await campaigns.state(name)
        deadline = time.monotonic() + 60
        while not settled((await state.status()).counts):  # retries of the busy and the silent one
            assert time.monotonic() < deadline, await state.status()
            await asyncio.sleep(0.5)
        results = {r.number: r for r in await state.results()}

        r = results[CONFIRM]
        assert (r.status, r.outcome, r.attempts) == ("done", "answered_human", 1), r
        assert r.flow_result and r.flow_result["outcome"] == "confirmed", r.flow_result
        r = results[OPT_OUT]
        assert r.flow_result and r.flow_result["outcome"] == "opted_out", r.flow_result
        assert await dnc.contains(OPT_OUT), "the opt-out did not reach the do-not-call list"
        r = results[VOICEMAIL]
        assert r.outcome == "answered_machine" and r.flow_result and r.flow_result["message_left"], r
        beep_at = mailbox.answered_at + len(machine.pcm) / 8000 - 4.0  # the greeting ends with 4 s of silence
        assert voiced_since(mailbox.rtp, beep_at) > 2.0, "no message after the beep"
        assert voiced_since(mailbox.rtp, mailbox.answered_at, beep_at - 0.6) == 0.0, "spoke over the greeting"
        r = results[BUSY]
        assert (r.status, r.outcome, r.attempts) == ("failed", "busy", 2), r
        r = results[NOBODY]
        assert (r.status, r.outcome, r.attempts) == ("failed", "no_answer", 2), r
        assert results[BLOCKED].status == "dnc", results[BLOCKED]
        assert results[ABROAD].status == "pending" and results[ABROAD].attempts == 0, results[ABROAD]
        dialled = [c.number for c in phone.calls]
        assert BLOCKED not in dialled and ABROAD not in dialled, dialled
        assert dialled.count(CONFIRM) == 1 and dialled.count(BUSY) == 2, dialled
        assert confirm.ended.is_set() and opt_out.ended.is_set()
        await state.cancel("test over")
        await nothing_left_in_asterisk(ari)
    finally:
        await phone.stop()
        await forget_campaign(redis, campaigns, name, [BLOCKED, OPT_OUT])


def small_campaign(tmp_path: Path, name: str, numbers: list[str], **spec: object) -> Path:
    rows = ["id,number,name,provider,appointment_id,appt_date,appt_time"]
    rows += [f"c{i},{n},Maria,Dr. Alvarez,1,2030-03-04,10:00" for i, n in enumerate(numbers)]
    (tmp_path / f"{name}.csv").write_text("\n".join(rows) + "\n")
    body = {"name": name, "flow": "appointment_reminder", "contacts": f"{name}.csv", "caller_id": "5551000",
            "timezone": "UTC", "window": {"start": "00:00", "end": "23:59", "days": list(ALL_DAYS)},
            "pacing": {"max_concurrent": 1, "calls_per_second": 5}, **spec}  # fmt: skip
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


async def test_a_person_moves_the_appointment_on_the_call(svc, settings, ari, tmp_path) -> None:
    lines = ["Hello?", "I can't make it, can we move it", "next Wednesday", "nine a m please", "yes"]
    say = await caller_voice(lines)
    number = "5550301"
    phone = await AgentPhone("127.0.0.1", settings.stack.callee_port,
                             plans={number: CalleePlan("answer", 0.5, say[lines[0]])}).start()  # fmt: skip
    campaigns = Campaigns(svc.store.redis.client, svc.store.keys.prefix, svc.store.protector.cipher)
    name = unique("move")
    try:
        flows = {n: list(f.inputs) for n, f in svc.deps.engine.flowset.flows.items()}
        await campaigns.start(small_campaign(tmp_path, name, [number]), flows)
        await person(phone, number, *(say[t] for t in lines[1:]))
        state = await campaigns.state(name)
        await wait_for_status(state, "done", 30)
        (r,) = await state.results()
        assert r.flow_result and r.flow_result["outcome"] == "rescheduled", r
        rec = await svc.store.get(r.session_id)
        said = " ".join(e.text for e in rec.transcript if e.speaker == "agent")
        assert "You're now booked for Wednesday" in said and "9 AM" in said, said
    finally:
        await phone.stop()
        await forget_campaign(campaigns.redis, campaigns, name)


async def test_a_trunk_that_rejects_everything_pauses_the_campaign(svc, settings, ari, tmp_path) -> None:
    numbers = [f"555040{i}" for i in range(6)]
    plans = {n: CalleePlan("reject", 0.1, reject_status=403, reject_reason="Forbidden") for n in numbers}
    phone = await AgentPhone("127.0.0.1", settings.stack.callee_port, plans=plans).start()
    campaigns = Campaigns(svc.store.redis.client, svc.store.keys.prefix, svc.store.protector.cipher)
    name = unique("trunk")
    try:
        flows = {n: list(f.inputs) for n, f in svc.deps.engine.flowset.flows.items()}
        await campaigns.start(small_campaign(tmp_path, name, numbers, pause_on_failures=3), flows)
        state = await campaigns.state(name)
        st = await wait_for_status(state, "paused", 60)
        assert "rejected 3 calls in a row" in st.reason, st.reason
        deadline = time.monotonic() + 10
        while st.counts.get("dialing"):  # a contact claimed as the pause landed is given back, not called
            assert time.monotonic() < deadline, st.counts
            await asyncio.sleep(0.2)
            st = await state.status()
        assert len(phone.calls) == 3, [c.number for c in phone.calls]  # the rest of the list is kept
        assert st.counts.get("pending") == 3, st.counts
    finally:
        await phone.stop()
        await forget_campaign(campaigns.redis, campaigns, name)


async def wait_for_status(state, status: str, timeout: float):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while (st := await state.status()).status != status:
        assert time.monotonic() < deadline, st
        await asyncio.sleep(0.5)
    return st
