"""Shared fixtures. The real stack (Asterisk + Redis) is started once per test session and
Asterisk is reset (leftover channels and bridges deleted) before every test that uses it. The
report header names the Asterisk versions in the rootfs and warns when they are not the ones the
suite was last green on (Debian sid cannot be pinned, so a rebuild may bring new ones)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
import redis.asyncio as aioredis

from ari_app import rootfs, stack
from ari_app.ari.client import auth_headers
from ari_app.config import Settings, load_settings


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Cheap: reads the rootfs's version manifest (written on first use for an older rootfs)."""
    try:
        report = rootfs.versions_report(load_settings())
    except Exception as e:  # a broken config or cache must not stop the run; the tests will say more
        return [f"asterisk rootfs: versions unknown ({type(e).__name__}: {e})"]
    lines = [f"asterisk rootfs: {rootfs.versions_summary(report)}"]
    if report.get("warning"):
        lines += f"WARNING: {report['warning']}".splitlines()
    return lines


@pytest.fixture(scope="session")
def settings() -> Settings:
    return load_settings()


@pytest.fixture(scope="session")
def real_stack(settings: Settings) -> Iterator[stack.StackState]:
    """The embedded Asterisk + Redis. Started if not running; stopped at the end only if we started it."""
    was_running = stack.status(settings).get("running", False)
    state = stack.up(settings)
    yield state
    if not was_running and not os.environ.get("ARI_APP_KEEP_STACK"):
        stack.down(settings)


async def reset_asterisk(settings: Settings) -> None:
    async with aiohttp.ClientSession(headers=auth_headers(settings.ari)) as http:
        async with http.get(f"{settings.ari.url}/channels") as r:
            channels = await r.json()
        for ch in channels:
            async with http.delete(f"{settings.ari.url}/channels/{ch['id']}"):
                pass
        async with http.get(f"{settings.ari.url}/bridges") as r:
            bridges = await r.json()
        for br in bridges:
            async with http.delete(f"{settings.ari.url}/bridges/{br['id']}"):
                pass
        # Give Asterisk a moment to finish hanging up so the next test starts clean.
        for _ in range(50):
            async with http.get(f"{settings.ari.url}/channels") as r:
                if not await r.json():
                    break
            await asyncio.sleep(0.05)


@pytest.fixture
async def asterisk(real_stack: stack.StackState, settings: Settings) -> AsyncIterator[stack.StackState]:
    """Use in a test that talks to Asterisk: the stack is up and holds no channels or bridges."""
    await reset_asterisk(settings)
    yield real_stack
    await reset_asterisk(settings)


@pytest.fixture
async def redis(real_stack: stack.StackState) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(real_stack.redis_url, decode_responses=False)
    yield client
    await client.aclose()
