"""Fixtures shared by the dialogue tests: the demo backend on a loopback port."""

from __future__ import annotations

import os

import pytest

from tests.dialog.harness import start_backend


@pytest.fixture
async def backend():
    runner, url = await start_backend()
    os.environ["DEMO_BACKEND_URL"] = url
    yield url
    await runner.cleanup()
