"""Shared fixtures. The real stack (Asterisk + Redis) is started once per test session and
Asterisk is reset (leftover channels and bridges deleted) before every test that uses it."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
import redis.asyncio as aioredis

from ari_app import stack
from ari_app.ari.client import auth_headers
from ari_app.config import Settings, load_settings


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
