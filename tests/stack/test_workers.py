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

import pytest

from ari_app import stack, workers_stack
from ari_app.config import Settings
from ari_app.testcaller.caller import CallReport, Silence, WaitForAgent, place_call
from tests.stack.agent_proc import ASK, AgentFleet, AgentProcess, caller_lines, free_port, running_fleet

pytestmark = pytest.mark.stack

WORKER_ENV = {"ARI_APP_ARI__MODE": "outbound"}


@dataclass
class Balanced:
    fleet: AgentFleet
    workers: list[AgentProcess]
    ports: list[int]
    settings: Settings

    async def start_worker(self, name: str, port: int, *, wait: bool = True) -> AgentProcess:
        w = await self.fleet.start(name, wait=False, ARI_APP_WEB__PORT=str(port), **WORKER_ENV)
        if wait:
            await w.wait_ready(240)
        return w

    def calls(self, w: AgentProcess) -> int:
        return w.log.count("call.ready")

    async def call(self, script: list, **kw: object) -> CallReport:
        s = self.settings
        return await place_call(
            s.stack.workers_extension, script, listen_s=0, sip_port=s.stack.sip_port, **kw
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


@contextlib.asynccontextmanager
async def balancer(settings: Settings, ports: list[int]) -> AsyncIterator[int]:
    if _busy(settings.stack.bind, settings.stack.workers_port):
        pytest.fail(f"port {settings.stack.workers_port} (stack.workers_port) is taken: "
                    "is `ari-app stack up --workers` running? (stack down, or stop its workers)")  # fmt: skip
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
    """One worker is up (its web server answers) but still loading its models: /readyz says
    503, HAProxy sends it nothing, and a websocket reaching it anyway is refused."""
    async with running_fleet(settings, redis, tmp_path) as fleet:
        ports = [free_port(), free_port()]
        b = Balanced(fleet, [], ports, settings)
        ready = await b.start_worker("ready", ports[0])
        loading = await b.start_worker("loading", ports[1], wait=False)
        deadline = time.monotonic() + 60
        while readyz(ports[1]) != 503:  # up, not ready
            assert time.monotonic() < deadline, (
                f"the loading worker never answered /readyz:\n{loading.tail()}"
            )
            await asyncio.sleep(0.05)
        async with balancer(settings, ports):
            statuses = []
            for _ in range(2):
                report = await b.call([WaitForAgent(timeout_s=30)])
                assert report.heard, "the caller never heard the greeting"
                statuses.append(readyz(ports[1]))
        print(f"loading worker's /readyz during the calls: {statuses}")
        assert 503 in statuses, "the second worker finished loading before the calls: no proof"
        assert b.calls(ready) == 2, ready.tail()
        assert b.calls(loading) == 0, loading.tail()


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
