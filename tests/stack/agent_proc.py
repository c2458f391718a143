"""The agent as a real separate process (`ari-app serve`) for crash, takeover and outage tests:
start it with test settings in its environment, wait until it is ready, SIGKILL it, read its log."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ari_app.config import Settings
from ari_app.demo import caller_voice
from ari_app.session import CallRecord, SessionSettings, SessionStore, SessionStoreUnavailable
from ari_app.testcaller.caller import Utterance
from tests.dialog.harness import start_backend

SERVE = [sys.executable, "-c", "from ari_app.cli import app; app()", "serve"]
READY = re.compile(r"agent\.ready.*instance=(\S+)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class AgentProcess:
    name: str
    proc: asyncio.subprocess.Process
    log_path: Path
    started_at: float
    ready_at: float | None = None
    instance_id: str | None = None
    returncode: int | None = field(default=None)

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.splitlines()[-lines:])

    async def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = READY.search(self.log)
            if m:
                self.ready_at, self.instance_id = time.monotonic(), m.group(1)
                return
            if self.proc.returncode is not None:
                raise AssertionError(f"agent {self.name} exited ({self.proc.returncode}):\n{self.tail()}")
            await asyncio.sleep(0.1)
        raise AssertionError(f"agent {self.name} not ready after {timeout} s:\n{self.tail()}")

    async def wait_log(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log:
            if time.monotonic() > deadline:
                raise AssertionError(f"agent {self.name} never logged {text!r}:\n{self.tail()}")
            await asyncio.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: no clean-up at all, like a crash."""
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGKILL)

    async def stop(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.kill()
                await self.proc.wait()
        self.returncode = self.proc.returncode


class AgentFleet:
    """Starts agent processes sharing one environment (Redis key prefix, leases, demo backend)
    and makes sure none outlives the test."""

    def __init__(self, log_dir: Path, env: dict[str, str]) -> None:
        self.log_dir = log_dir
        self.env = env
        self.procs: list[AgentProcess] = []
        self.store: SessionStore  # reads the agents' records (set by the fixture)

    async def start(self, name: str, *, wait: bool = True, **env: str) -> AgentProcess:
        log_path = self.log_dir / f"agent-{name}.log"
        full = {**os.environ, **self.env, "ARI_APP_WEB__PORT": str(free_port()), **env}
        with log_path.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(
                *SERVE, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=asyncio.subprocess.STDOUT,
                env=full, start_new_session=True,
            )  # fmt: skip
        agent = AgentProcess(name, proc, log_path, time.monotonic())
        self.procs.append(agent)
        if wait:
            await agent.wait_ready()
        return agent

    async def close(self) -> None:
        for p in self.procs:
            await p.stop()


async def demo_backend_env(middlewares: Sequence[Any] = ()) -> tuple[object, dict[str, str]]:
    """The demo backend on a free loopback port, and the environment that points the agent at it."""
    runner, url = await start_backend(middlewares)
    return runner, {"DEMO_BACKEND_URL": url, "IVA_DEMO_SECRET": os.environ["IVA_DEMO_SECRET"]}


# ---------------------------------------------------------------------------- fixtures and helpers
# What the test caller says in the reschedule flow (seed customer Dana: 5551234567, DOB 1985-04-12).
ASK = "I need to reschedule my appointment"
DOB = "April twelfth nineteen eighty five"
NEW_DATE = "next Wednesday"

LEASE_TTL = 3.0  # short leases keep takeover tests quick; heartbeats every second
HEARTBEAT = 1.0
SWEEP_INTERVAL = 2.0  # Service._sweep_orphans


@contextlib.asynccontextmanager
async def running_fleet(
    settings: Settings, redis: Any, log_dir: Path, backend_middlewares: Sequence[Any] = ()
) -> AsyncIterator[AgentFleet]:
    """Agent processes on a fresh Redis key prefix, with the demo backend; all stopped after."""
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    runner, env = await demo_backend_env(backend_middlewares)
    env |= {
        "ARI_APP_SESSION__KEY_PREFIX": prefix,
        "ARI_APP_SESSION__LEASE_TTL": str(LEASE_TTL),
        "ARI_APP_SESSION__HEARTBEAT_INTERVAL": str(HEARTBEAT),
        "ARI_APP_LOG_LEVEL": "info",
    }
    f = AgentFleet(log_dir, env)
    # The reader holds the agents' key (the embedded stack's): campaign contacts are sealed with it.
    reader = SessionSettings(key_prefix=prefix, encryption_key=settings.session.encryption_key)
    f.store = SessionStore(settings.redis.url, "test-reader", reader)
    await f.store.connect()
    try:
        yield f
    finally:
        await f.close()
        await f.store.close()
        await runner.cleanup()  # type: ignore[attr-defined]
        async for key in redis.scan_iter(match=f"{prefix}:*"):
            await redis.delete(key)


@pytest.fixture
async def fleet(asterisk, redis, settings: Settings, tmp_path: Path) -> AsyncIterator[AgentFleet]:
    async with running_fleet(settings, redis, tmp_path) as f:
        yield f


async def wait_for_record(
    store: SessionStore, pred: Callable[[CallRecord], bool], timeout: float, what: str
) -> CallRecord:
    """Poll the (single) active call's record until ``pred`` holds."""
    deadline = time.monotonic() + timeout
    last: CallRecord | None = None
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):  # Redis restarting, or a record half-written or garbled
            for sid in await store.redis.read(lambda r: r.smembers(store.keys.active)):
                rec = await store.get(sid.decode())
                if rec is not None:
                    last = rec
                    if pred(rec):
                        return rec
        await asyncio.sleep(0.1)
    state = last.conversation_state if last else None
    raise AssertionError(f"timed out waiting for {what}; last state: {state}")


async def read_record(store: SessionStore, session_id: str, timeout: float = 10.0) -> CallRecord:
    """The record, retried while the reader's own Redis connection recovers (after a restart)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            rec = await store.get(session_id)
            assert rec is not None, f"no record {session_id}"
            return rec
        except SessionStoreUnavailable:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


def awaiting_slot(rec: CallRecord) -> str | None:
    frames = rec.conversation_state.get("frames") or []
    return frames[-1].get("slot") if frames else None


_voices: dict[str, np.ndarray] = {}


async def caller_lines(*texts: str) -> dict[str, Utterance]:
    """The caller speaks with piper (like the demo), which Whisper reads reliably."""
    missing = [t for t in texts if t not in _voices]
    if missing:
        _voices.update(await caller_voice(missing))
    return {t: Utterance(pcm=_voices[t]) if t in _voices else Utterance(text=t) for t in texts}
