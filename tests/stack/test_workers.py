"""Workers on the real stack: three `ari-app serve` processes in worker mode (ari.mode =
outbound) behind a real HAProxy on stack.workers_port, where Asterisk's per-call outbound ARI
websocket connects (websocket_client.conf [ari-workers]). Real SIP calls to the workers
extension: they spread over the workers and are answered; a worker that is not ready, or that
drains, gets no new call while its own call goes on; a worker killed mid-call (docs/scaling.md
says what Asterisk does then)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from ari_app import stack, workers_stack
from ari_app.config import Settings
from ari_app.testcaller.caller import CallReport, Silence, Utterance, WaitForAgent, place_call
from tests.stack.agent_proc import (
    ASK,
    LEASE_TTL,
    AgentFleet,
    AgentProcess,
    caller_lines,
    free_port,
    running_fleet,
)

pytestmark = pytest.mark.stack

WORKER_ENV = {"ARI_APP_ARI__MODE": "outbound"}


@dataclass
class Balanced:
    fleet: AgentFleet
    workers: list[AgentProcess]
    ports: list[int]
    settings: Settings

    async def start_worker(self, name: str, port: int, *, wait: bool = True, **env: str) -> AgentProcess:
        w = await self.fleet.start(name, wait=False, ARI_APP_WEB__PORT=str(port), **WORKER_ENV, **env)
        if wait:
            await w.wait_ready(240)
        return w

    def calls(self, w: AgentProcess) -> int:
        return w.log.count("call.ready")

    async def call(self, script: list, sip_port: int | None = None, **kw: object) -> CallReport:
        """A call to the workers extension of the stack's Asterisk (or the box on ``sip_port``)."""
        s = self.settings
        return await place_call(
            s.stack.workers_extension, script, listen_s=0, sip_port=sip_port or s.stack.sip_port, **kw
        )  # type: ignore[arg-type]


def _busy(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def readyz(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)
    except OSError:
        return 0


async def _websocket_status(settings: Settings, port: int) -> int:
    """What a worker answers to Asterisk's websocket, with the right credentials."""
    auth = aiohttp.encode_basic_auth(
        settings.ari.worker_username, settings.ari.worker_password.get_secret_value()
    )
    url = f"http://127.0.0.1:{port}{settings.ari.worker_path}"
    async with aiohttp.ClientSession() as http:
        try:
            ws = await http.ws_connect(url, protocols=("ari",), headers={"Authorization": auth})
        except aiohttp.WSServerHandshakeError as e:
            return e.status
        await ws.close()
        return 101


@contextlib.asynccontextmanager
async def balancer(settings: Settings, ports: list[int]) -> AsyncIterator[int]:
    if _busy(settings.stack.bind, settings.stack.workers_port):
        pytest.fail(f"port {settings.stack.workers_port} (stack.workers_port) is taken: "
                    "is `ari-app stack up --workers` running? (stack down, or stop its workers)")  # fmt: skip
    workers_stack.check_asterisk(settings)  # a stack started before the outbound config: say so
    pid = await asyncio.to_thread(workers_stack.start_haproxy, settings, ports, "haproxy-test")
    await asyncio.sleep(1.5)  # one health check round (inter 1 s, rise 1)
    try:
        yield pid
    finally:
        await asyncio.to_thread(stack._stop, [pid])


@pytest.fixture
async def balanced(asterisk, redis, settings: Settings, tmp_path: Path) -> AsyncIterator[Balanced]:
    async with running_fleet(settings, redis, tmp_path) as fleet:
        ports = [free_port() for _ in range(3)]
        b = Balanced(fleet, [], ports, settings)
        b.workers = [await b.start_worker(f"w{i}", p, wait=False) for i, p in enumerate(ports)]
        await asyncio.gather(*(w.wait_ready(240) for w in b.workers))
        async with balancer(settings, ports):
            yield b


async def test_calls_spread_over_workers_and_are_answered(balanced: Balanced) -> None:
    reports = await asyncio.gather(*(balanced.call([WaitForAgent(timeout_s=30)]) for _ in range(3)))
    for r in reports:
        assert r.heard, "a caller never heard the greeting"
    per_worker = [balanced.calls(w) for w in balanced.workers]
    print(f"calls per worker: {per_worker}")
    assert sum(per_worker) == 3, per_worker
    assert sum(1 for n in per_worker if n) >= 2, f"all calls went to one worker: {per_worker}"
    for w in balanced.workers:  # every worker is active: no instance lock, no replaced stream
        assert "ari.events.replaced" not in w.log and "standby" not in w.log, w.tail()


async def test_a_worker_that_is_not_ready_gets_no_calls(
    asterisk, redis, settings: Settings, tmp_path: Path
) -> None:
    """A worker that is up but not ready gets no call: first while it loads its models (its
    web server already answers /readyz with 503), then once it has lost its Redis (its own
    redis-server, stopped: /readyz 503 while the process and its web server stay up). HAProxy
    sends both calls to the ready worker, and a websocket reaching the other one is refused."""
    own_port = free_port()
    own_redis = await asyncio.create_subprocess_exec(
        "redis-server", "--bind", "127.0.0.1", "--port", str(own_port), "--save", "", "--appendonly", "no",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        async with running_fleet(settings, redis, tmp_path) as fleet:
            ports = [free_port(), free_port()]
            b = Balanced(fleet, [], ports, settings)
            ready = await b.start_worker("ready", ports[0])
            other = await fleet.start("unready", wait=False, ARI_APP_WEB__PORT=str(ports[1]),
                                      ARI_APP_REDIS__URL=f"redis://127.0.0.1:{own_port}/0", **WORKER_ENV)  # fmt: skip
            deadline = time.monotonic() + 60
            while readyz(ports[1]) != 503:  # up, loading
                assert time.monotonic() < deadline, (
                    f"the loading worker never answered /readyz:\n{other.tail()}"
                )
                await asyncio.sleep(0.05)
            await other.wait_ready(240)
            own_redis.terminate()
            await own_redis.wait()
            deadline = time.monotonic() + 20
            while readyz(ports[1]) != 503:  # up, Redis lost
                assert time.monotonic() < deadline, (
                    f"a worker without Redis still says ready:\n{other.tail()}"
                )
                await asyncio.sleep(0.1)
            async with balancer(settings, ports):
                reports = await asyncio.gather(*(b.call([WaitForAgent(timeout_s=30)]) for _ in range(2)))
                refused = await _websocket_status(settings, ports[1])
                still = readyz(ports[1])
            assert all(r.heard for r in reports), "a caller never heard the greeting"
            assert still == 503 and refused == 503, (still, refused)
            assert b.calls(ready) == 2, ready.tail()
            assert b.calls(other) == 0, other.tail()
            assert other.proc.returncode is None, "the unready worker is up all along"
    finally:
        if own_redis.returncode is None:
            own_redis.kill()
            await own_redis.wait()


async def test_a_drained_worker_takes_no_new_calls_while_its_call_finishes(balanced: Balanced) -> None:
    say = await caller_lines(ASK)
    script = [WaitForAgent(timeout_s=30), Silence(1.0), say[ASK], WaitForAgent(timeout_s=30, quiet_s=1.5)]
    first = asyncio.create_task(balanced.call(script))
    deadline = time.monotonic() + 30
    while not any(balanced.calls(w) for w in balanced.workers):
        assert time.monotonic() < deadline, "no worker set the first call up"
        await asyncio.sleep(0.1)
    (drained,) = [w for w in balanced.workers if balanced.calls(w)]
    port = balanced.ports[balanced.workers.index(drained)]
    drained.proc.send_signal(15)  # SIGTERM: drain
    await drained.wait_log("worker.draining", 10)
    assert readyz(port) == 503
    drained_at = time.monotonic()
    others = [w for w in balanced.workers if w is not drained]
    second = await balanced.call([WaitForAgent(timeout_s=30)])
    assert second.heard
    assert balanced.calls(drained) == 1 and sum(balanced.calls(w) for w in others) == 1
    report = await asyncio.wait_for(first, 90)
    # The drained worker's caller went on talking with it: the answer to the question was heard.
    assert any(s > drained_at for s, _ in report.heard), "the draining worker's caller heard nothing more"
    assert drained.proc.returncode is None or drained.proc.returncode == 0
    await asyncio.wait_for(drained.proc.wait(), 30)  # its last call over: it exits by itself
    assert "worker.drained" in drained.log and "calls_left=0" in drained.log, drained.tail()


async def test_a_worker_killed_mid_call_and_the_call_goes_on_with_another(balanced: Balanced) -> None:
    """Measured on Asterisk 22.10.1 (docs/scaling.md): when a per-call websocket dies, Asterisk
    reconnects at once to the same uri (here HAProxy, which sends it to a live worker) and sends
    only ApplicationRegistered (no new StasisStart); the caller stays in Stasis. That worker
    finds the caller by the channel name in the app name, waits for the dead worker's lease to
    lapse, adopts the call from Redis and resumes the question that was being asked."""
    say = await caller_lines(ASK)
    script = [
        WaitForAgent(timeout_s=30), say[ASK], WaitForAgent(timeout_s=30, quiet_s=1.5),
        WaitForAgent(timeout_s=45, quiet_s=1.0),  # the adopting worker speaks again
        Silence(1.0),
    ]  # fmt: skip
    caller = asyncio.create_task(balanced.call(script))
    deadline = time.monotonic() + 60
    victim = None
    while victim is None:
        assert time.monotonic() < deadline, "no worker asked for the phone number"
        victim = next((w for w in balanced.workers if "phone number on your account" in w.log), None)
        await asyncio.sleep(0.1)
    await asyncio.sleep(4.0)  # mid-question / waiting for the answer; the turn is saved
    victim.kill()
    killed_at = time.monotonic()
    report = await asyncio.wait_for(caller, 120)
    after = [round(s - killed_at, 2) for s, _ in report.heard if s > killed_at]
    adopters = [w for w in balanced.workers if w is not victim and "takeover.adopted" in w.log]
    logs = "\n".join(f"{w.name}:\n{w.tail(15)}" for w in balanced.workers if w is not victim)
    print(f"heard again {after[:1]} s after the kill")
    assert len(adopters) == 1, f"{len(adopters)} workers adopted the call\n{logs}"
    assert "worker.reconnected_call" in adopters[0].log, logs
    assert after and after[0] < LEASE_TTL + 8, f"the caller heard nothing soon after the kill: {after}"
    assert "Sorry about that" in adopters[0].log and report.sip.ended_by == "local"


def _queue_entries(rootfs: str, since: float) -> list[str]:
    """ENTERQUEUE lines of Asterisk's queue_log written since ``since`` (unix time)."""
    path = Path(rootfs) / "var/log/asterisk/queue_log"
    lines = path.read_text(errors="replace").splitlines() if path.exists() else []
    return [ln for ln in lines if "|ENTERQUEUE|" in ln and int(ln.split("|", 1)[0]) >= int(since)]


async def _wait_queue_entry(rootfs: str, since: float, timeout: float = 10.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := _queue_entries(rootfs, since):
            return found
        await asyncio.sleep(0.2)
    return []


async def test_no_worker_reachable_the_caller_goes_to_a_person(asterisk, settings: Settings) -> None:
    """Nothing listens where Asterisk's outbound websocket connects: Stasis() fails after its
    connect attempts (STASISSTATUS=FAILED) and the dialplan queues the caller for a person."""
    workers_stack.check_asterisk(settings)
    assert not _busy(settings.stack.bind, settings.stack.workers_port), "stack.workers_port is taken"
    since = time.time()
    report = await place_call(settings.stack.workers_extension, [Silence(6.0)], listen_s=0,
                              sip_port=settings.stack.sip_port)  # fmt: skip
    entries = await _wait_queue_entry(asterisk.rootfs, since)
    assert entries and all("|support|" in e for e in entries), entries
    assert report.heard, "the caller heard nothing (the queue plays music on hold)"


async def test_every_worker_gone_mid_call_the_caller_goes_to_a_person(
    asterisk, redis, settings: Settings, tmp_path: Path
) -> None:
    """The only worker dies mid-call: Asterisk's reconnects reach HAProxy, which has no worker
    left (503); after reconnect_attempts Stasis() returns FAILED and the caller is queued."""
    async with running_fleet(settings, redis, tmp_path) as fleet:
        port = free_port()
        b = Balanced(fleet, [], [port], settings)
        worker = await b.start_worker("only", port)
        async with balancer(settings, [port]):
            caller = asyncio.create_task(b.call([WaitForAgent(timeout_s=30), Silence(10.0)]))
            await worker.wait_log("call.say", 30)
            await asyncio.sleep(3.0)
            since = time.time()
            worker.kill()
            killed_at = time.monotonic()
            entries = await _wait_queue_entry(asterisk.rootfs, since)
            report = await asyncio.wait_for(caller, 60)
        queued_after = [round(s - killed_at, 2) for s, _ in report.heard if s > killed_at]
        print(f"caller queued: {entries}; heard (music) {queued_after[:1]} s after the kill")
        assert entries and all("|support|" in e for e in entries), entries
        assert queued_after, "silence after the worker died"


async def test_warm_transfer_through_a_worker(asterisk, redis, settings: Settings, tmp_path: Path) -> None:
    """The agent's transfer legs (Local channel into the queue) are created in the call's
    per-call app over its websocket: the agent's phone rings with the context, hears the caller
    after the whisper, and the caller hears the agent."""
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
        async with running_fleet(settings, redis, tmp_path) as fleet:
            port = free_port()
            b = Balanced(fleet, [], [port], settings)
            worker = await b.start_worker("only", port)
            async with balancer(settings, [port]):
                script = [WaitForAgent(timeout_s=30), say[person], Silence(2.0),
                          Utterance(pcm=tone(CALLER_TONE_HZ, 40))]  # fmt: skip
                caller = asyncio.create_task(b.call(script))
                agent = await phone.next_call(timeout=60)
                while not agent.header("X-IVA-Session"):  # a late ring for an earlier test's queued caller
                    agent = await phone.next_call(timeout=60)
                await wait_for(lambda: agent.answered_at is not None, 5, "agent phone answered")
                await wait_for(hears_tone(agent.rtp, CALLER_TONE_HZ, agent.answered_at), 30,
                               "the agent hears the caller after the whisper")  # fmt: skip
                spoke = time.monotonic()
                await agent.play(tone(AGENT_TONE_HZ, 1.5))
                await asyncio.sleep(2.0)
                await agent.hangup()
                report = await asyncio.wait_for(caller, 15)
        got = heard(report.rtp, spoke, spoke + 2.0)
        assert tone_share(got, AGENT_TONE_HZ) > 0.5, "the caller did not hear the agent"
        assert "transfer.originate_failed" not in worker.log, worker.tail()
    finally:
        await phone.stop()


async def test_a_second_sigterm_hands_the_drained_call_to_another_worker(balanced: Balanced) -> None:
    """A deploy that cannot wait for the drain: the second SIGTERM stops the worker at once; its
    call is handed over (session released, websocket closed) and another worker adopts it when
    Asterisk reconnects."""
    say = await caller_lines(ASK)
    script = [
        WaitForAgent(timeout_s=30), say[ASK], WaitForAgent(timeout_s=30, quiet_s=1.5),
        WaitForAgent(timeout_s=45, quiet_s=1.0),  # the adopting worker speaks again
        Silence(1.0),
    ]  # fmt: skip
    caller = asyncio.create_task(balanced.call(script))
    deadline = time.monotonic() + 60
    victim = None
    while victim is None:
        assert time.monotonic() < deadline, "no worker asked for the phone number"
        victim = next((w for w in balanced.workers if "phone number on your account" in w.log), None)
        await asyncio.sleep(0.1)
    await asyncio.sleep(4.0)
    victim.proc.send_signal(15)
    await victim.wait_log("worker.draining", 10)
    victim.proc.send_signal(15)
    stopped_at = time.monotonic()
    await asyncio.wait_for(victim.proc.wait(), 15)
    print(f"worker exited {time.monotonic() - stopped_at:.2f} s after the second SIGTERM")
    report = await asyncio.wait_for(caller, 120)
    after = [round(s - stopped_at, 2) for s, _ in report.heard if s > stopped_at]
    adopters = [w for w in balanced.workers if w is not victim and "takeover.adopted" in w.log]
    logs = "\n".join(f"{w.name}:\n{w.tail(15)}" for w in balanced.workers)
    print(f"heard again {after[:1]} s after the second SIGTERM")
    assert "calls.handed_over" in victim.log, logs
    assert len(adopters) == 1, f"{len(adopters)} workers adopted the call\n{logs}"
    assert "worker.reconnected_call" in adopters[0].log, logs  # Asterisk reconnected after a clean close
    assert after and "Sorry about that" in adopters[0].log, logs
