"""Session-store fixtures: stores on the real Redis, each test under its own key prefix."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis.asyncio as aioredis

from ari_app.session.models import CallRecord
from ari_app.session.settings import SessionSettings
from ari_app.session.store import SessionStore
from ari_app.stack import StackState

StoreFactory = Callable[..., Awaitable[SessionStore]]


@pytest.fixture
def prefix() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def make_store(
    real_stack: StackState, redis: aioredis.Redis, prefix: str
) -> AsyncIterator[StoreFactory]:
    """make_store(instance_id="a", url=None, **session_settings) -> a connected SessionStore."""
    stores: list[SessionStore] = []

    async def make(instance_id: str = "inst-a", url: str | None = None, **overrides: object) -> SessionStore:
        settings = SessionSettings(key_prefix=prefix, **overrides)  # type: ignore[arg-type]
        store = SessionStore(url or real_stack.redis_url, instance_id, settings)
        await store.connect()
        stores.append(store)
        return store

    yield make
    for store in stores:
        await store.close()
    async for key in redis.scan_iter(match=f"{prefix}:*"):
        await redis.delete(key)


def new_record(session_id: str | None = None, **fields: object) -> CallRecord:
    sid = session_id or f"s-{uuid.uuid4().hex[:8]}"
    data: dict[str, object] = {
        "session_id": sid,
        "channel_id": f"chan-{sid}",
        "caller_number": "+15551230000",
        "called_number": "1000",
    }
    data.update(fields)
    return CallRecord.model_validate(data)
