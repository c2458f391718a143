"""The service's campaign runner on a real Redis (no Asterisk: nothing gets as far as dialling):
a campaign that cannot run is paused with the reason instead of failing again every poll, and a
standby instance dials nothing."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from types import SimpleNamespace

import redis.asyncio as aioredis
import yaml

from ari_app.config import Settings
from ari_app.outbound.registry import Campaigns
from ari_app.outbound.runner import CampaignRunner
from tests.outbound.conftest import CIPHER

FLOWS = {"appointment_reminder": ["name"]}


def campaign(tmp: Path, **spec: object) -> Path:
    (tmp / "p.csv").write_text("id,number,name\na,5550101,Maria\n")
    body = {"name": "runner-test", "flow": "appointment_reminder", "contacts": "p.csv", "caller_id": "5551000",
            "timezone": "UTC", "window": {"start": "00:00", "end": "23:59",
                                          "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]}, **spec}  # fmt: skip
    (tmp / "c.yaml").write_text(yaml.safe_dump(body))
    return tmp / "c.yaml"


def runner(r: aioredis.Redis, prefix: str, active: bool) -> CampaignRunner:
    store = SimpleNamespace(
        redis=SimpleNamespace(client=r),
        keys=SimpleNamespace(prefix=prefix),
        protector=SimpleNamespace(cipher=CIPHER, encrypts=True),
    )
    manager = SimpleNamespace(calls={}, ari=None, events=None)
    return CampaignRunner(Settings(), manager, store, active=lambda: active)


async def status_after(c: Campaigns, run: CampaignRunner, want: str, timeout: float = 10.0) -> str:
    task = asyncio.create_task(run.run())
    deadline = time.monotonic() + timeout
    try:
        while True:
            st = await c.status("runner-test")
            if st.status == want or time.monotonic() > deadline:
                return f"{st.status}: {st.reason}"
            await asyncio.sleep(0.1)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_campaign_that_cannot_run_is_paused_with_the_reason(
    r: aioredis.Redis, tmp_path, monkeypatch
) -> None:
    monkeypatch.delenv("NO_SUCH_SECRET_FOR_TEST", raising=False)
    c = Campaigns(r, "run1", CIPHER)
    hook = {"url": "http://127.0.0.1:9/results", "secret_env": "NO_SUCH_SECRET_FOR_TEST"}
    await c.start(campaign(tmp_path, results_webhook=hook), FLOWS)
    got = await status_after(c, runner(r, "run1", active=True), "paused")
    assert got.startswith("paused:") and "NO_SUCH_SECRET_FOR_TEST" in got, got
    assert (await (await c.state("runner-test")).contact("a")).attempts == 0  # nobody was dialled


async def test_a_standby_dials_nothing(r: aioredis.Redis, tmp_path) -> None:
    c = Campaigns(r, "run2", CIPHER)
    await c.start(campaign(tmp_path), FLOWS)
    run = runner(r, "run2", active=False)
    got = await status_after(c, run, "paused", timeout=2.5)  # it never changes: still running
    assert got.startswith("running"), got
    assert not run.dialers
    assert (await (await c.state("runner-test")).contact("a")).attempts == 0
