"""ari room: how a REST request reaches Asterisk — the seam between the typed client and the wire.

Why: in inbound mode REST goes over HTTP to Asterisk's /ari; in outbound (worker) mode it goes
over the call's own websocket as RESTRequest/RESTResponse messages (ws_rest.py), so a worker
needs no HTTP route to whichever Asterisk sent the call. ``AriClient`` builds the request and
maps the reply to typed errors; a transport only carries it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from ari_app.ari.errors import AriConnectionError


@dataclass(frozen=True)
class RestReply:
    status: int
    text: str  # the body as Asterisk sent it ("" when there is none)


class RestTransport(Protocol):
    """Carries one ARI REST request. ``path`` is relative to /ari (``/channels/1/answer``);
    ``params`` are already strings. Raises AriConnectionError when Asterisk cannot be reached
    or does not answer in time; any HTTP status is returned, not raised."""

    where: str  # for error messages: the URL, or "the websocket of call X"

    async def send(self, method: str, path: str, params: dict[str, str], body: Any) -> RestReply: ...

    async def close(self) -> None: ...


class HttpTransport:
    """REST over HTTP to ``base_url`` (Asterisk's /ari) with Basic auth, one pooled session."""

    def __init__(
        self,
        base_url: str,
        headers: dict[str, str],
        timeout: float,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.where = base_url
        self._headers = headers
        self._timeout = timeout
        self._own_session = session is None
        self._session = session

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(total=self._timeout)
            self._session = aiohttp.ClientSession(headers=self._headers, timeout=timeout)
            self._own_session = True
        return self._session

    async def send(self, method: str, path: str, params: dict[str, str], body: Any) -> RestReply:
        try:
            async with self.http.request(method, f"{self.where}{path}", params=params, json=body) as resp:
                return RestReply(resp.status, await resp.text())
        except aiohttp.ClientConnectionError as e:
            raise AriConnectionError(f"cannot reach ARI at {self.where}: {e}") from None
        except TimeoutError:
            raise AriConnectionError(f"ARI at {self.where} did not answer {method} {path}") from None

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
