"""`ari-app stack up --sentinel`: the embedded stack's Redis Sentinel (ari_app/sentinel_stack.py)
on real redis-server processes, in a run dir and on ports of this test's own: it starts, names
its primary, serves the agent's session store through the sentinels, fails over when the
primary is SIGKILLed, and `down` stops every node it started."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from ari_app import sentinel_stack
from ari_app.config import RedisSettings, Settings
from ari_app.redis_lab import free_ports
from ari_app.session import CallRecord, SessionSettings, SessionStore
from ari_app.stack import _alive

pytestmark = pytest.mark.stack


def own_settings(settings: Settings, tmp_path: Path) -> Settings:
    base = min(free_ports(5))  # five in a row from the lowest free one is likely free too
    stack = settings.stack.model_copy(update={"run_dir": tmp_path / "run", "sentinel_port_base": base})
    return settings.model_copy(update={"stack": stack})


async def test_stack_sentinel_serves_the_store_and_fails_over(settings: Settings, tmp_path: Path) -> None:
    s = own_settings(settings, tmp_path)
    state = await asyncio.to_thread(sentinel_stack.up, s)
    try:
        base = s.stack.sentinel_port_base
        st = sentinel_stack.status(s)
        assert st is not None and st["primary"] == f"{s.stack.bind}:{base}", st
        assert all(n["alive"] for n in st["nodes"].values()) and len(st["nodes"]) == 5
        assert oct((tmp_path / "run" / "sentinel.json").stat().st_mode & 0o777) == "0o600"
        env = sentinel_stack.redis_env(s)
        redis_settings = RedisSettings(url=env["ARI_APP_REDIS__URL"],
                                       sentinels=env["ARI_APP_REDIS__SENTINELS"].split(","),
                                       sentinel_master=env["ARI_APP_REDIS__SENTINEL_MASTER"],
                                       sentinel_password=env["ARI_APP_REDIS__SENTINEL_PASSWORD"])  # fmt: skip
        store = SessionStore(redis_settings, "test", SessionSettings(key_prefix="sentinel-stack-test"))
        await store.connect()
        try:
            await store.create(CallRecord(session_id="before", channel_id="c1"))
            os.kill(state["pids"]["redis-1"], signal.SIGKILL)
            deadline = time.monotonic() + 30
            while (st := sentinel_stack.status(s)) and st["primary"] != f"{s.stack.bind}:{base + 1}":
                assert time.monotonic() < deadline, f"no failover: {st}"
                await asyncio.sleep(0.2)
            await store.create(CallRecord(session_id="after", channel_id="c2"))
            for sid in ("before", "after"):  # both on the promoted replica
                deadline = time.monotonic() + 20
                while (rec := await _get(store, sid)) is None:
                    assert time.monotonic() < deadline, f"record {sid} not on the new primary"
                    await asyncio.sleep(0.2)
                assert rec.channel_id in ("c1", "c2")
        finally:
            await store.close()
    finally:
        stopped = await asyncio.to_thread(sentinel_stack.down, s)
    assert set(stopped) == {p for n, p in state["pids"].items() if n != "redis-1"}
    assert not any(_alive(p) for p in state["pids"].values())
    assert sentinel_stack.status(s) is None


async def _get(store: SessionStore, sid: str) -> CallRecord | None:
    try:
        return await store.get(sid)
    except Exception:  # still reconnecting to the new primary
        return None
