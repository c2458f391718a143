"""Small signal and ARI helpers shared by the test-caller tests."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import numpy as np

from ari_app.config import Settings


def dominant_frequency(pcm: np.ndarray, rate: int = 8000) -> float:
    x = pcm.astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.fft.rfftfreq(x.size, 1 / rate)[int(np.argmax(spectrum))])


def best_lag(reference: np.ndarray, received: np.ndarray) -> tuple[int, float]:
    """Lag (samples) of ``reference`` inside ``received`` and the normalised correlation there."""
    ref = reference.astype(np.float64) - reference.mean()
    rec = received.astype(np.float64) - received.mean()
    corr = np.correlate(rec, ref, mode="valid")
    lag = int(np.argmax(corr))
    window = rec[lag : lag + ref.size]
    norm = float(np.linalg.norm(ref) * np.linalg.norm(window)) or 1.0
    return lag, float(corr[lag]) / norm


async def wait_until(pred: Callable[[], Any], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = pred()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return True
        await asyncio.sleep(step)
    return False


class Ari:
    def __init__(self, settings: Settings, http: aiohttp.ClientSession) -> None:
        self.url = settings.ari.url
        self.http = http

    async def request(self, method: str, path: str, **kw: Any) -> tuple[int, Any]:
        async with self.http.request(method, f"{self.url}{path}", **kw) as r:
            body = await r.json() if r.content_type == "application/json" else await r.text()
            return r.status, body

    async def channels(self) -> list[dict]:
        status, body = await self.request("GET", "/channels")
        assert status == 200, body
        return body

    async def sip_channel(self, call_id: str) -> dict | None:
        """The channel whose SIP Call-ID is ``call_id`` (ARI's protocol_id), if Asterisk still has it."""
        return next((c for c in await self.channels() if c.get("protocol_id") == call_id), None)

    async def channel_gone(self, channel_id: str) -> bool:
        return all(c["id"] != channel_id for c in await self.channels())

    async def originate_to_agent(
        self, *, extension: str = "1001", timeout_s: int = 10, headers: dict[str, str] | None = None
    ) -> dict:
        """Dial PJSIP/agent; once answered the agent leg runs dev-inbound ``extension`` (1001 = Echo)."""
        variables = {f"PJSIP_HEADER(add,{k})": v for k, v in (headers or {}).items()}
        status, body = await self.request(
            "POST",
            "/channels",
            params={
                "endpoint": "PJSIP/agent",
                "extension": extension,
                "context": "dev-inbound",
                "priority": "1",
                "timeout": str(timeout_s),
                "callerId": "ari-app <1000>",
            },
            json={"variables": variables},
        )
        assert status == 200, body
        return body


@asynccontextmanager
async def ari_client(settings: Settings) -> AsyncIterator[Ari]:
    auth = aiohttp.BasicAuth(settings.ari.username, settings.ari.password.get_secret_value())
    async with aiohttp.ClientSession(auth=auth) as http:
        yield Ari(settings, http)
