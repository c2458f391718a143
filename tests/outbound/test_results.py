"""Results: the CSV masks numbers; the webhook is signed like tool webhooks and retried on 5xx."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web

from ari_app.dialog.tools import IDEMPOTENCY_HEADER, verify
from ari_app.outbound.errors import CampaignError
from ari_app.outbound.records import ContactResult
from ari_app.outbound.results import ResultsWebhook, mask_number, results_csv, write_results_csv
from tests.dialog.test_tool_idempotency import serve
from tests.outbound.conftest import make_spec

DONE = ContactResult("c1", "+15551234567", "Ann", "done", 2, "answered_human", 16,
                     {"outcome": "confirmed"}, 42.0, "sess-1", None, "", "out-1")  # fmt: skip
FAILED = ContactResult("c2", "5550001111", None, "failed", 3, "busy", 17)


@pytest.mark.parametrize(
    ("number", "masked"),
    [("+15551234567", "+*******4567"), ("5551234567", "******4567"), ("112", "**2"), ("1234", "**34")],
)
def test_mask_number(number: str, masked: str) -> None:
    assert mask_number(number) == masked


def test_results_csv() -> None:
    text = results_csv([DONE, FAILED], transcript_link=lambda sid: f"https://iva.example/calls/{sid}")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[0] == {"id": "c1", "number": "+*******4567", "status": "done", "outcome": "answered_human",
                       "attempts": "2", "flow_result": '{"outcome": "confirmed"}', "duration_s": "42.0",
                       "session_id": "sess-1", "transcript": "https://iva.example/calls/sess-1"}  # fmt: skip
    assert rows[1]["transcript"] == "" and rows[1]["flow_result"] == "" and rows[1]["number"] == "******1111"
    assert "5551234567" not in text


def test_write_results_csv_to_a_file(tmp_path: Path) -> None:
    out = tmp_path / "results.csv"
    assert write_results_csv([DONE], out) == 1
    assert out.read_text().splitlines()[0].startswith("id,number,status,outcome")


@asynccontextmanager
async def backend(statuses: list[int], seen: list[web.Request], bodies: list[bytes]) -> AsyncIterator[str]:
    async def handle(request: web.Request) -> web.Response:
        seen.append(request)
        bodies.append(await request.read())
        return web.json_response({}, status=statuses.pop(0) if statuses else 200)

    app = web.Application()
    app.router.add_post("/hooks/results", handle)
    async with serve(app) as url:
        yield f"{url}/hooks/results?src=iva"


async def test_webhook_is_signed_keyed_and_retried_on_5xx() -> None:
    seen: list[web.Request] = []
    bodies: list[bytes] = []
    async with backend([503, 200], seen, bodies) as url:
        hook = ResultsWebhook("reminders", url, "s3cret", backoff_s=0.01)
        try:
            assert await hook.post(DONE) is True
        finally:
            await hook.close()
    assert len(seen) == 2
    for request, body in zip(seen, bodies, strict=True):
        verify("s3cret", request.headers, "POST", request.raw_path, body, now=time.time())
        assert request.headers[IDEMPOTENCY_HEADER] == "reminders:c1:out-1"  # the same on the retry
    sent = json.loads(bodies[0])
    assert sent["campaign"] == "reminders" and sent["id"] == "c1" and sent["number"] == "+*******4567"
    assert sent["flow_result"] == {"outcome": "confirmed"} and sent["attempts"] == 2 and sent["cause"] == 16


async def test_webhook_gives_up_without_raising() -> None:
    seen: list[web.Request] = []
    async with backend([400], seen, []) as url:
        hook = ResultsWebhook("reminders", url, "s3cret", backoff_s=0.01)
        assert await hook.post(FAILED) is False and len(seen) == 1  # a 4xx is not retried
        await hook.close()
    hook = ResultsWebhook("reminders", "http://127.0.0.1:9/nothing", "s3cret", retries=1, backoff_s=0.01,
                          timeout_s=1)  # fmt: skip
    assert await hook.post(FAILED) is False
    await hook.close()


def test_webhook_from_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ResultsWebhook.from_spec(make_spec()) is None
    spec = make_spec(results_webhook={"url": "https://crm.example/r", "secret_env": "CRM_RESULTS_SECRET"})
    monkeypatch.delenv("CRM_RESULTS_SECRET", raising=False)
    with pytest.raises(CampaignError, match="environment variable CRM_RESULTS_SECRET is not set"):
        ResultsWebhook.from_spec(spec)
    monkeypatch.setenv("CRM_RESULTS_SECRET", "x")
    hook = ResultsWebhook.from_spec(spec)
    assert hook is not None and hook.campaign == "reminders" and str(hook.url) == "https://crm.example/r"
