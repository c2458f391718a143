"""The dialer against a real Redis and a fake originator: who is called, how often, and when not."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from ari_app.outbound.campaign import CampaignSpec
from ari_app.outbound.contacts import Contact, load_contacts
from ari_app.outbound.dialer import AttemptResult, Dialer
from ari_app.outbound.dnc import DncList
from ari_app.outbound.outcomes import Outcome
from ari_app.outbound.pacer import Pacer
from ari_app.outbound.records import CampaignStatus, ContactResult
from ari_app.outbound.state import CampaignKeys, CampaignState
from tests.outbound.conftest import CIPHER, contact, make_spec

ANSWERED = AttemptResult(Outcome.ANSWERED_HUMAN, session_id="s", duration_s=12.0)
FAST = {"pacing": {"max_concurrent": 2, "calls_per_second": 100}}


def noon_clock() -> Callable[[], float]:
    """Today 12:00 UTC, running in real time from now: inside any all-day window."""
    now = time.time()
    base, started = now - now % 86400 + 12 * 3600, time.monotonic()
    return lambda: base + time.monotonic() - started


class FakeOriginator:
    """Answers from a per-contact script (default: a person answers); records what it was asked."""

    def __init__(self, script: dict[str, list[AttemptResult]] | None = None, *, hold_s: float = 0.0,
                 default: AttemptResult = ANSWERED) -> None:  # fmt: skip
        self.script = script or {}
        self.hold_s, self.default = hold_s, default
        self.calls: list[str] = []
        self.at: dict[str, list[float]] = {}
        self.in_flight = self.max_in_flight = 0
        self.gate: asyncio.Event | None = None
        self.on_call: Callable[[Contact], Any] | None = None

    async def call(self, contact: Contact, spec: CampaignSpec, *, attempt_id: str) -> AttemptResult:
        assert len(attempt_id) == 32 and spec.flow
        self.calls.append(contact.id)
        self.at.setdefault(contact.id, []).append(time.monotonic())
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.on_call:
                await self.on_call(contact)
            await asyncio.sleep(self.hold_s)
            if self.gate:
                await self.gate.wait()
            todo = self.script.get(contact.id)
            result = todo.pop(0) if todo else self.default
            if isinstance(result, Exception):
                raise result
            return result
        finally:
            self.in_flight -= 1


class Harness:
    def __init__(self, r: aioredis.Redis, keys: CampaignKeys, spec: CampaignSpec) -> None:
        self.r, self.keys, self.spec = r, keys, spec
        self.state = CampaignState(r, spec, keys, CIPHER)
        self.dnc = DncList(r, keys, CIPHER)
        self.clock = noon_clock()
        self.progress: list[CampaignStatus] = []
        self.finished: list[ContactResult] = []

    def dialer(
        self, originator: FakeOriginator, clock: Callable[[], float] | None = None, pacer: Pacer | None = None
    ) -> Dialer:
        pacer = pacer or Pacer(self.spec.pacing, poll_s=0.01)
        return Dialer(self.spec, self.state, self.dnc, originator, pacer,
                      on_progress=self.progress.append, on_finished=self.finished.append,
                      clock=clock or self.clock, idle_poll_s=0.01)  # fmt: skip

    async def load(self, contacts: list[Contact], now: float | None = None) -> None:
        await self.state.load(contacts, self.clock() if now is None else now)

    async def run(self, originator: FakeOriginator, timeout: float = 10) -> CampaignStatus:
        return await asyncio.wait_for(self.dialer(originator).run(), timeout)

    async def results(self) -> dict[str, ContactResult]:
        return {c.id: c for c in await self.state.results()}


async def eventually(check: Callable[[], Any], timeout: float = 5) -> None:
    """Until ``check()`` (a bool or an awaitable of one) holds."""
    deadline = time.monotonic() + timeout
    while not ((await got) if inspect.isawaitable(got := check()) else got):
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def test_calls_everyone_once_then_done(r: aioredis.Redis, keys: CampaignKeys) -> None:
    h = Harness(r, keys, make_spec(**FAST))
    await h.load([contact(f"c{i}") for i in range(5)])
    fake = FakeOriginator()
    status = await h.run(fake)
    assert status.status == "done" and status.counts["done"] == 5 and status.attempts == 5
    assert fake.calls == [f"c{i}" for i in range(5)]  # in file order, each once
    assert len(h.progress) >= 6 and h.progress[-1].status == "done"
    assert sorted(f.id for f in h.finished) == sorted(fake.calls)
    assert all(f.session_id == "s" and f.duration_s == 12.0 for f in h.finished)


async def test_busy_and_no_answer_retried_with_backoff_up_to_max(
    r: aioredis.Redis, keys: CampaignKeys
) -> None:
    spec = make_spec(**FAST, retries={"max_attempts": 3, "backoff_s": {"busy": 0.1, "no_answer": 0.2}})
    h = Harness(r, keys, spec)
    await h.load([contact("a"), contact("b")])
    busy, no_answer = AttemptResult(Outcome.BUSY, cause=17), AttemptResult(Outcome.NO_ANSWER, cause=19)
    fake = FakeOriginator({"a": [busy, no_answer, ANSWERED], "b": [busy, busy, busy, ANSWERED]})
    status = await h.run(fake)
    assert status.status == "done"
    res = await h.results()
    assert (res["a"].status, res["a"].attempts, res["a"].outcome) == ("done", 3, "answered_human")
    assert (res["b"].status, res["b"].attempts, res["b"].outcome, res["b"].cause) == ("failed", 3, "busy", 17)
    assert fake.calls.count("a") == 3 and fake.calls.count("b") == 3  # never a 4th attempt
    gaps = [t2 - t1 for t1, t2 in zip(fake.at["a"], fake.at["a"][1:], strict=False)]
    assert gaps[0] >= 0.1 and gaps[1] >= 0.2, gaps


async def test_dnc_numbers_are_never_dialled(r: aioredis.Redis, keys: CampaignKeys) -> None:
    h = Harness(r, keys, make_spec(**FAST))
    blocked = contact("b", "+1 555 000 7777")
    await h.dnc.add("+1 (555) 000-7777", "asked us in May")
    await h.load([contact("a"), blocked, contact("c")])
    fake = FakeOriginator()
    status = await h.run(fake)
    assert "b" not in fake.calls and sorted(fake.calls) == ["a", "c"]
    res = await h.results()
    assert (res["b"].status, res["b"].attempts) == ("dnc", 0)
    assert status.counts["dnc"] == 1 and status.attempts == 2
    assert "b" in [f.id for f in h.finished]


async def test_outside_the_window_is_deferred_not_dialled(r: aioredis.Redis, keys: CampaignKeys) -> None:
    spec = make_spec(**FAST, window={"start": "08:00", "end": "21:00"})  # mon-sat
    h = Harness(r, keys, spec)
    sunday_noon = datetime(2024, 6, 9, 12, 0, tzinfo=UTC).timestamp()
    # Sunday 12:00 UTC is Monday 00:00 in Auckland (NZST, UTC+12): opens there at 20:00 UTC.
    await h.load([contact("here"), contact("nz", tz="Pacific/Auckland")], sunday_noon)
    fake = FakeOriginator()
    run = asyncio.create_task(h.dialer(fake, clock=lambda: sunday_noon).run())

    async def both_deferred() -> bool:
        res = await h.results()
        return all(c.next_at and c.next_at > sunday_noon for c in res.values())

    await eventually(both_deferred)
    res = await h.results()
    assert res["here"].next_at == datetime(2024, 6, 10, 8, 0, tzinfo=UTC).timestamp()
    assert res["nz"].next_at == datetime(2024, 6, 9, 20, 0, tzinfo=UTC).timestamp()
    assert all((c.status, c.attempts) == ("pending", 0) for c in res.values())
    assert await h.state.cancel("test over")
    status = await asyncio.wait_for(run, 5)
    assert status.status == "cancelled" and fake.calls == []


async def test_opt_out_goes_on_the_dnc_list(r: aioredis.Redis, keys: CampaignKeys) -> None:
    h = Harness(r, keys, make_spec(**FAST))
    a = contact("a")
    await h.load([a])
    await h.run(FakeOriginator({"a": [AttemptResult(Outcome.ANSWERED_HUMAN, opted_out=True)]}))
    assert await h.dnc.contains(a.number)
    assert await h.dnc.reason(a.number) == "opted out during campaign reminders"
    # Another campaign with the same person never calls them.
    other = Harness(r, keys, make_spec(**FAST, name="surveys"))
    await other.load([contact("a2", a.number)])
    fake = FakeOriginator()
    assert (await other.run(fake)).counts["dnc"] == 1 and fake.calls == []


async def test_trunk_rejecting_everything_pauses_the_campaign(r: aioredis.Redis, keys: CampaignKeys) -> None:
    h = Harness(r, keys, make_spec(pacing={"max_concurrent": 1, "calls_per_second": 100}))
    await h.load([contact(f"c{i}") for i in range(10)])
    fake = FakeOriginator(default=AttemptResult(Outcome.REJECTED, cause=21))
    status = await h.run(fake)
    assert status.status == "paused"
    assert status.reason == "the trunk rejected 5 calls in a row (cause 21): paused"
    assert len(fake.calls) == 5 and status.counts["pending"] == 5 and status.counts["failed"] == 5


async def test_a_success_resets_the_failure_run(r: aioredis.Redis, keys: CampaignKeys) -> None:
    h = Harness(
        r, keys, make_spec(pacing={"max_concurrent": 1, "calls_per_second": 100}, pause_on_failures=3)
    )
    await h.load([contact(f"c{i}") for i in range(6)])
    failed = AttemptResult(Outcome.FAILED, cause=27)
    fake = FakeOriginator({"c0": [failed], "c1": [failed], "c3": [failed], "c4": [failed]})
    assert (await h.run(fake)).status == "done" and len(fake.calls) == 6


async def test_malformed_rows_reported_good_rows_called(r: aioredis.Redis, keys: CampaignKeys,
                                                        tmp_path: Path) -> None:  # fmt: skip
    path = tmp_path / "contacts.csv"
    path.write_text("id,number,name\nc1,555-000-0101,Ann\nc2,not-a-number,Bob\nc3,555 000 0103,Cid\n")
    spec = make_spec(tmp_path, **FAST)
    loaded = load_contacts(spec.contacts, spec.timezone)
    assert loaded.errors == ["contacts.csv row 3, field 'number': 'not-a-number' is not a phone number"]
    h = Harness(r, keys, spec)
    await h.load(loaded.contacts)
    fake = FakeOriginator()
    assert (await h.run(fake)).status == "done" and sorted(fake.calls) == ["c1", "c3"]


async def test_pause_stops_new_calls_resume_finishes(r: aioredis.Redis, keys: CampaignKeys) -> None:
    h = Harness(r, keys, make_spec(**FAST))
    await h.load([contact(f"c{i}") for i in range(6)])
    fake = FakeOriginator(hold_s=0.05)

    async def pause_on_second(c: Contact) -> None:
        if len(fake.calls) == 2:
            await h.state.pause("the admin pressed pause")

    fake.on_call = pause_on_second
    status = await h.run(fake)
    assert (status.status, status.reason) == ("paused", "the admin pressed pause")
    first = list(fake.calls)
    assert 2 <= len(first) < 6
    assert status.counts["dialing"] == 0 and status.counts["done"] == len(first)  # calls up finished
    fake.on_call = None
    assert await h.state.resume()
    status = await h.run(fake)
    assert status.status == "done" and sorted(fake.calls) == [f"c{i}" for i in range(6)]  # nobody twice


async def test_cancel_lets_calls_in_progress_finish(r: aioredis.Redis, keys: CampaignKeys) -> None:
    h = Harness(r, keys, make_spec(**FAST))
    await h.load([contact(f"c{i}") for i in range(5)])
    fake = FakeOriginator()
    fake.gate = asyncio.Event()
    run = asyncio.create_task(h.dialer(fake).run())
    await eventually(lambda: len(fake.calls) == 2)
    assert await h.state.cancel()
    await asyncio.sleep(0.05)
    assert not run.done()  # waiting for the two calls, not hanging them up
    fake.gate.set()
    status = await asyncio.wait_for(run, 5)
    assert status.status == "cancelled" and status.counts["done"] == 2 and status.counts["pending"] == 3
    assert len(fake.calls) == 2


async def test_max_concurrent_is_respected(r: aioredis.Redis, keys: CampaignKeys) -> None:
    h = Harness(r, keys, make_spec(pacing={"max_concurrent": 3, "calls_per_second": 100}))
    await h.load([contact(f"c{i}") for i in range(12)])
    fake = FakeOriginator(hold_s=0.05)
    assert (await h.run(fake)).status == "done"
    assert fake.max_in_flight == 3 and len(fake.calls) == 12


async def test_inbound_reserve_holds_calls_back_and_pause_still_stops(
    r: aioredis.Redis, keys: CampaignKeys
) -> None:
    h = Harness(
        r, keys, make_spec(pacing={"max_concurrent": 3, "calls_per_second": 100, "inbound_reserve": 0.25})
    )
    await h.load([contact(f"c{i}") for i in range(4)])
    inbound = [3]  # of capacity 4, one slot reserved: no room for outbound
    pacer = Pacer(h.spec.pacing, capacity_max_calls=4, inbound_calls=lambda: inbound[0], poll_s=0.01)
    fake = FakeOriginator(hold_s=0.02)
    run = asyncio.create_task(h.dialer(fake, pacer=pacer).run())
    await asyncio.sleep(0.1)
    assert fake.calls == []
    inbound[0] = 2  # one caller hung up: one outbound call at a time
    await eventually(lambda: len(fake.calls) == 2)
    assert fake.max_in_flight == 1
    inbound[0] = 3
    await h.state.pause("night")
    status = await asyncio.wait_for(run, 5)  # returns although the pacer has no room
    assert status.status == "paused" and fake.max_in_flight == 1


async def test_restart_never_calls_anyone_twice(r: aioredis.Redis, keys: CampaignKeys) -> None:
    spec = make_spec(pacing={"max_concurrent": 1, "calls_per_second": 100})
    h = Harness(r, keys, spec)
    await h.load([contact("a"), contact("b"), contact("c")])
    first = FakeOriginator()
    first.gate = asyncio.Event()  # the call to "a" is up when the process dies
    dialer = h.dialer(first)
    run = asyncio.create_task(dialer.run())
    await eventually(lambda: first.calls == ["a"])
    for task in list(dialer.tasks):  # "crash": everything stops, nothing is recorded
        task.cancel()
    run.cancel()
    await asyncio.gather(run, return_exceptions=True)
    assert (await h.state.contact("a")).status == "dialing"  # type: ignore[union-attr]

    # A new process: new state object, recover, new dialer.
    h2 = Harness(r, keys, spec)

    async def nothing_is_live(attempt_id: str) -> bool:
        return False

    recovered = await h2.state.recover(nothing_is_live)
    assert recovered.interrupted == ["a"] and recovered.returned == [] and recovered.live == []
    second = FakeOriginator()
    status = await h2.run(second)
    assert second.calls == ["b", "c"]  # "a" is reported, not re-dialled
    assert status.status == "done" and status.counts["interrupted"] == 1
    assert (await h2.results())["a"].status == "interrupted"


async def test_originator_error_fails_the_contact_and_callbacks_cannot_stop_it(
    r: aioredis.Redis, keys: CampaignKeys
) -> None:
    h = Harness(r, keys, make_spec(**FAST))
    await h.load([contact("a"), contact("b")])

    def broken_progress(status: CampaignStatus) -> None:
        raise RuntimeError("progress display broke")

    dialer = h.dialer(FakeOriginator({"a": [ConnectionError("ARI went away")]}))  # type: ignore[list-item]
    dialer.on_progress = broken_progress
    status = await asyncio.wait_for(dialer.run(), 10)
    res = await h.results()
    assert status.status == "done" and res["a"].status == "failed" and res["a"].attempts == 1
    assert res["a"].flow_result == {"error": "ConnectionError: ARI went away"}
    assert res["b"].status == "done"
