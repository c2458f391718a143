"""outbound: a campaign's results — a CSV for the admin, a signed webhook for their backend.

Why: the people who run a campaign want to know, per contact, whether they were reached and
what they said (the flow's result), without a file of full phone numbers being mailed around:
the CSV masks every number but its last digits. A backend that wants results as they happen
gets one POST per finished contact, signed like our tool webhooks (``dialog.tools``: HMAC over
timestamp, method, path, Idempotency-Key and body) and keyed by the attempt, so a retry after a
lost answer is recognisably the same delivery.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TextIO

import aiohttp
import structlog
from yarl import URL

from ari_app.dialog.tools import IDEMPOTENCY_HEADER, canonical_json, signed_headers
from ari_app.outbound.campaign import CampaignSpec
from ari_app.outbound.errors import CampaignError
from ari_app.outbound.records import ContactResult

log = structlog.get_logger(__name__)

COLUMNS = ("id", "number", "status", "outcome", "attempts", "flow_result", "duration_s", "session_id",
           "transcript")  # fmt: skip
TranscriptLink = Callable[[str], str]  # session id -> where its transcript is shown


def mask_number(number: str) -> str:
    """``+15551234567`` -> ``+*******4567``: the last 4 digits (fewer for a short number) stay."""
    digits = number.lstrip("+")
    keep = min(4, len(digits) // 2)
    return number[: len(number) - len(digits)] + "*" * (len(digits) - keep) + digits[len(digits) - keep :]


def result_row(result: ContactResult, transcript_link: TranscriptLink | None = None) -> dict[str, str]:
    link = transcript_link(result.session_id) if transcript_link and result.session_id else ""
    return {
        "id": result.id,
        "number": mask_number(result.number),
        "status": result.status,
        "outcome": result.outcome,
        "attempts": str(result.attempts),
        "flow_result": json.dumps(result.flow_result, sort_keys=True) if result.flow_result else "",
        "duration_s": f"{result.duration_s:.1f}" if result.duration_s else "",
        "session_id": result.session_id,
        "transcript": link,
    }


def write_results_csv(
    results: Iterable[ContactResult], out: str | Path | TextIO, transcript_link: TranscriptLink | None = None
) -> int:
    """Write one row per contact (header first); returns how many rows."""
    if isinstance(out, (str, Path)):
        with Path(out).open("w", newline="", encoding="utf-8") as f:
            return write_results_csv(results, f, transcript_link)
    writer = csv.DictWriter(out, fieldnames=COLUMNS)
    writer.writeheader()
    n = 0
    for r in results:
        writer.writerow(result_row(r, transcript_link))
        n += 1
    return n


def results_csv(results: Iterable[ContactResult], transcript_link: TranscriptLink | None = None) -> str:
    buf = io.StringIO()
    write_results_csv(results, buf, transcript_link)
    return buf.getvalue()


def payload(campaign: str, result: ContactResult) -> dict[str, Any]:
    """What the webhook sends about one finished contact (the number masked, like the CSV)."""
    return {"campaign": campaign, **result_row(result), "flow_result": result.flow_result,
            "duration_s": result.duration_s, "attempts": result.attempts, "cause": result.cause,
            "reason": result.reason}  # fmt: skip


class ResultsWebhook:
    """POSTs a finished contact's result; never raises (a backend that is down must not stop a
    campaign): retries timeouts, connection errors and 5xx, then logs and gives up."""

    def __init__(
        self,
        campaign: str,
        url: str,
        secret: str,
        *,
        session: aiohttp.ClientSession | None = None,
        timeout_s: float = 10.0,
        retries: int = 2,
        backoff_s: float = 1.0,
    ) -> None:
        self.campaign, self.url, self.secret = campaign, URL(url), secret
        self._session, self._own_session = session, session is None
        self.timeout_s, self.retries, self.backoff_s = timeout_s, retries, backoff_s

    @classmethod
    def from_spec(cls, spec: CampaignSpec, **kwargs: Any) -> ResultsWebhook | None:
        """None when the campaign has no webhook; CampaignError when its secret is not set."""
        hook = spec.results_webhook
        if hook is None:
            return None
        secret = os.environ.get(hook.secret_env)
        if not secret:
            raise CampaignError(f"{spec.source}: results_webhook.secret_env: environment variable "
                                f"{hook.secret_env} is not set")  # fmt: skip
        return cls(spec.name, hook.url, secret, **kwargs)

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()

    async def post(self, result: ContactResult) -> bool:
        """True when the backend answered 2xx."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        body = canonical_json(payload(self.campaign, result))
        key = f"{self.campaign}:{result.id}:{result.attempt_id or result.status}"
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(self.backoff_s * 2 ** (attempt - 1))
            headers = {"Content-Type": "application/json", IDEMPOTENCY_HEADER: key}
            headers |= signed_headers(self.secret, "POST", self.url.raw_path_qs, key, body, time.time())
            try:
                async with self._session.post(
                    self.url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=self.timeout_s)
                ) as resp:
                    status = resp.status
            except (TimeoutError, aiohttp.ClientError) as e:
                log.warning(
                    "campaign.webhook_error", campaign=self.campaign, contact=result.id, error=repr(e)
                )
                continue
            if status < 300:
                return True
            log.warning("campaign.webhook_status", campaign=self.campaign, contact=result.id, status=status)
            if status < 500:
                return False  # our request is wrong: sending it again will not help
        return False

    async def __call__(self, result: ContactResult) -> None:
        """As the dialer's ``on_finished``."""
        await self.post(result)
