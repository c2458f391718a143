"""Outbound fixtures: a private redis-server for this package's tests, and small builders.

Why a server of our own: the campaign state is Lua scripts and ZSETs whose behaviour a fake
would only imitate, and the repo's Redis fixture needs the embedded stack (Asterisk too). Each
test module gets a fresh ``redis-server`` on a free port (nothing saved to disk), killed after
the module; each test starts from an empty database.
"""

from __future__ import annotations

import itertools
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from cryptography.fernet import Fernet

from ari_app.outbound.campaign import CampaignSpec
from ari_app.outbound.contacts import Contact
from ari_app.outbound.state import CampaignKeys
from ari_app.session.cipher import RecordCipher
from ari_app.session.settings import SessionSettings

# Contacts and the DNC list are stored sealed: the tests run with a key, like every deployment.
CIPHER = RecordCipher(SessionSettings(encryption_key=Fernet.generate_key().decode()))  # type: ignore[arg-type]

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not Path(REDIS_SERVER).exists():
        pytest.skip("redis-server is not installed")
    port = _free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [REDIS_SERVER, "--port", str(port), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1",
         "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    try:
        probe = redis.Redis.from_url(url)
        deadline = time.monotonic() + 10
        while True:
            try:
                probe.ping()
                break
            except redis.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server on port {port} did not start") from None
                time.sleep(0.05)
        probe.close()
        yield url
    finally:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture
async def r(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(redis_url, decode_responses=False)
    await client.flushdb()
    yield client
    await client.aclose()


@pytest.fixture
def keys() -> CampaignKeys:
    return CampaignKeys(prefix="t")


def make_spec(tmp: Path | None = None, **overrides: Any) -> CampaignSpec:
    """A valid campaign; ``overrides`` replace top-level keys (sections as dicts)."""
    data: dict[str, Any] = {
        "name": "reminders",
        "flow": "appointment_reminder",
        "contacts": str((tmp or Path("/tmp")) / "contacts.csv"),
        "caller_id": '"Clinic" <5551000>',
        "timezone": "UTC",
        "window": {
            "start": "00:00",
            "end": "23:59",
            "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
        },
    }
    data.update(overrides)
    return CampaignSpec.model_validate(data)


_numbers = itertools.count(1000)


def contact(cid: str, number: str | None = None, tz: str = "UTC", **data: str) -> Contact:
    """A contact with a number no other test contact has (unless one is given)."""
    return Contact(id=cid, number=number or f"+1555000{next(_numbers):04d}", timezone=tz, data=data)
