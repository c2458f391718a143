"""Workers on the real stack through the things a site does to them while calls are up: a
rolling restart of every worker, and a Redis Sentinel failover (the primary SIGKILLed) under a
real SIP call. Real Asterisk, HAProxy, redis-server/sentinels and SIP calls (docs/scaling.md,
docs/redis_sentinel.md)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from ari_app.config import Settings
from ari_app.redis_lab import SentinelLab
from ari_app.session import SessionSettings, SessionStore
from ari_app.testcaller.caller import CallReport, Dtmf, Silence, WaitForAgent
from tests.stack.agent_proc import (
    ASK,
    DOB,
    NEW_DATE,
    AgentProcess,
    awaiting_slot,
    caller_lines,
    free_port,
    read_record,
    running_fleet,
    wait_for_record,
)
from tests.stack.test_workers import Balanced, _queue_entries, balancer, readyz

pytestmark = pytest.mark.stack

FAQ = "What are your opening hours?"
ADDRESS = "Where are you located?"


async def test_sentinel_failover_mid_call_through_a_worker(
    asterisk, redis, settings: Settings, tmp_path: Path
) -> None:
    """Two workers keep their calls in a Sentinel lab (primary, replica, three sentinels). The
    primary is SIGKILLed while the caller is being asked for the date of birth: the worker
    goes on answering from memory, the sentinels promote the replica, the worker follows them
    and replays what it buffered, and every later turn is written on the new primary."""
    say = await caller_lines(ASK, DOB, NEW_DATE)
    lab = SentinelLab(tmp_path / "lab")
    await asyncio.to_thread(lab.up)
    try:
        async with running_fleet(settings, redis, tmp_path) as fleet:
            redis_env = {
                "ARI_APP_REDIS__URL": f"redis://:{lab.password}@primary/0",
                "ARI_APP_REDIS__SENTINELS": ",".join(lab.sentinel_addresses),
                "ARI_APP_REDIS__SENTINEL_MASTER": lab.master,
                "ARI_APP_REDIS__SENTINEL_PASSWORD": lab.sentinel_password,
            }
            prefix = fleet.env["ARI_APP_SESSION__KEY_PREFIX"]
            reader = SessionStore(lab.redis_settings(), "test-reader", SessionSettings(
                key_prefix=prefix, encryption_key=settings.session.encryption_key))  # fmt: skip
            await reader.connect()
            ports = [free_port(), free_port()]
            b = Balanced(fleet, [], ports, settings)
            b.workers = [
                await b.start_worker(f"w{i}", p, wait=False, **redis_env) for i, p in enumerate(ports)
            ]
            await asyncio.gather(*(w.wait_ready(240) for w in b.workers))
            try:
                async with balancer(settings, ports):
                    script = [
                        WaitForAgent(timeout_s=30), say[ASK], WaitForAgent(timeout_s=30),
                        Dtmf("5551234567#"), WaitForAgent(timeout_s=30, quiet_s=1.0),
                        say[DOB], WaitForAgent(timeout_s=30, quiet_s=1.5), Silence(3.0),
                        say[NEW_DATE], WaitForAgent(timeout_s=30, quiet_s=1.5),
                    ]  # fmt: skip
                    caller = asyncio.create_task(b.call(script))
                    before = await wait_for_record(reader, lambda r: awaiting_slot(r) == "dob", 90,
                                                   "the date-of-birth question")  # fmt: skip
                    killed_at = time.monotonic()
                    await asyncio.to_thread(lab.stop, "redis-1")  # SIGKILL: nothing flushed
                    new_primary = await asyncio.to_thread(lab.wait_failover, lab.nodes["redis-1"].port)
                    print(
                        f"sentinels named {new_primary} {time.monotonic() - killed_at:.2f} s after the kill"
                    )
                    report = await asyncio.wait_for(caller, 120)
                rec = await read_record(reader, before.session_id, timeout=20)
            finally:
                await reader.close()
            (worker,) = [w for w in b.workers if b.calls(w)]
            assert lab.primary_name() == "redis-2"
            _assert_answered_after(report, killed_at, 2)
            caller_said = [e.text for e in rec.transcript if e.speaker == "caller"]
            assert len(caller_said) == 4, caller_said  # ask, keys, dob, new date: none lost
            assert "wednesday" in caller_said[-1].lower(), caller_said
            assert rec.turn == before.turn + 2, (before.turn, rec.turn)
            assert rec.slots.get("new_date") and rec.slots.get("phone") == "5551234567", rec.slots
            assert "is unreachable" in worker.log and "is back after" in worker.log, worker.tail()
            assert "session.write_failed" not in worker.log, worker.tail()
            assert lab.password not in worker.log and lab.sentinel_password not in worker.log
    finally:
        await asyncio.to_thread(lab.down)


def _assert_answered_after(report: CallReport, since: float, n: int) -> None:
    after = [r for r in report.responses() if r.caller_stopped > since]
    assert len(after) >= n, report.to_dict()["sent"]
    assert all(r.agent_started is not None for r in after), report.to_dict()["responses"]


DRAIN_S = 6.0  # ari.drain_timeout for the rolling restart: long calls are handed over, not waited for


async def test_a_rolling_restart_of_every_worker_drops_no_call(
    asterisk, redis, settings: Settings, tmp_path: Path
) -> None:
    """A deploy: each of three workers in turn gets SIGTERM (it drains: no new calls; its calls
    run on for ari.drain_timeout, then are handed over), exits, and a new worker starts on its
    port. Two long calls talk all through it and a new call arrives after every step. No call
    is dropped or sent to the human queue: every caller is greeted, the long callers are still
    answered after the last worker was replaced, and the calls moved between workers."""
    say = await caller_lines(FAQ, ADDRESS)
    since = time.time()
    env = {"ARI_APP_ARI__DRAIN_TIMEOUT": str(DRAIN_S)}
    async with running_fleet(settings, redis, tmp_path) as fleet:
        ports = [free_port() for _ in range(3)]
        b = Balanced(fleet, [], ports, settings)
        b.workers = [await b.start_worker(f"w{i}", p, wait=False, **env) for i, p in enumerate(ports)]
        await asyncio.gather(*(w.wait_ready(240) for w in b.workers))
        async with balancer(settings, ports):
            questions = [say[FAQ], say[ADDRESS]] * 9
            long_script = [WaitForAgent(timeout_s=30)]
            for q in questions:  # a caller who keeps asking, well past the whole deploy
                long_script += [q, WaitForAgent(timeout_s=30, quiet_s=1.5)]
            long_calls = [asyncio.create_task(b.call(long_script)) for _ in range(2)]
            await asyncio.sleep(8.0)
            short_calls: list[asyncio.Task[CallReport]] = []
            replaced: list[AgentProcess] = []
            restart_done = time.monotonic()
            for i, old in enumerate(list(b.workers)):
                old.proc.send_signal(15)
                await asyncio.wait_for(old.proc.wait(), DRAIN_S + 30)
                assert old.proc.returncode == 0, f"{old.name} exited {old.proc.returncode}:\n{old.tail()}"
                replaced.append(old)
                b.workers[i] = await b.start_worker(f"w{i}-new", ports[i], **env)
                while readyz(ports[i]) != 200:  # noqa: ASYNC110 - HAProxy checks it too
                    await asyncio.sleep(0.2)
                await asyncio.sleep(1.2)  # one HAProxy health check round: back in the pool
                short_calls.append(asyncio.create_task(b.call([WaitForAgent(timeout_s=30), Silence(1.0)])))
                restart_done = time.monotonic()
            longs = await asyncio.wait_for(asyncio.gather(*long_calls), 300)
            shorts = await asyncio.wait_for(asyncio.gather(*short_calls), 60)
    logs = "\n".join(f"{w.name}:\n{w.tail(12)}" for w in replaced + b.workers)
    assert all(r.heard for r in shorts), "a caller arriving during the deploy was not greeted"
    assert not _queue_entries(asterisk.rootfs, since), "a caller was sent to the human queue"
    for r in longs:
        assert r.sip.ended_by == "local", f"the call was ended by the other side: {r.sip}\n{logs}"
        assert any(s > restart_done for s, _ in r.heard), f"not answered after the deploy\n{logs}"
        answered = [x for x in r.responses() if x.agent_started is not None]
        print(f"long call: {len(answered)} of {len(r.responses())} questions answered")
        assert len(answered) >= len(questions) - 3, r.to_dict()["responses"]
    handed = sum(w.log.count("calls.handed_over") for w in replaced)
    adopted = sum(w.log.count("takeover.adopted") for w in replaced + b.workers)
    print(f"handed over {handed}, adopted {adopted}")
    assert handed >= 1 and adopted >= handed, logs
