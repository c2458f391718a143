"""Web fixtures: the web app over a real SessionStore (real Redis), served by aiohttp's test server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from ari_app.session.models import CallRecord, TranscriptEntry
from ari_app.session.store import SessionStore
from ari_app.web.app import create_web_app
from ari_app.web.settings import WebSettings
from tests.session.conftest import StoreFactory, make_store, new_record, prefix  # noqa: F401 (fixtures)

TOKEN = "s3cret-agent-token"
XSS_TEXT = '<img src=x onerror="window.__xss=1">'
XSS_SCRIPT = "</li><script>window.__xss=2</script>"


@pytest.fixture
async def store(make_store: StoreFactory) -> SessionStore:  # noqa: F811
    return await make_store("web-inst")


@pytest.fixture
async def client(store: SessionStore) -> AsyncIterator[TestClient]:
    app = create_web_app(store, WebSettings(token=SecretStr(TOKEN), page_refresh=0.5))
    async with TestClient(TestServer(app)) as c:
        yield c


async def hostile_call(store: SessionStore) -> CallRecord:
    """A call whose caller said markup and gave a card number: what the page must defuse."""
    rec = new_record(
        caller_name=XSS_TEXT,
        intent="card_payment",
        summary=f"Caller wants to pay {XSS_SCRIPT}",
        slots={"card_number": "4111 1111 1111 1234", "order": XSS_TEXT, "cvv": "123"},
        transcript=[
            TranscriptEntry(speaker="agent", text="How can I help?"),
            TranscriptEntry(speaker="caller", text=f"pay with {XSS_SCRIPT}", confidence=0.8),
        ],
        transfer={"reason": "caller asked for a human", "queue": "support"},
        status="transferring",
    )
    await store.create(rec)
    return rec
