"""speech: the HTTP connection pool our clients of external speech servers share (ASR and TTS).

One ``aiohttp.ClientSession`` per client, created on first use inside the running loop: its
connector caps the connections open to the server (``pool_size``; further requests queue for a
free one, inside their timeout) and keeps idle ones alive so a turn does not pay a TCP handshake.
"""

from __future__ import annotations

import aiohttp

from ari_app.speech.settings import OpenAiServerSettings


class ServerPool:
    def __init__(self, settings: OpenAiServerSettings) -> None:
        self.settings = settings
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            headers = {}
            key = self.settings.api_key.get_secret_value()
            if key:
                headers["Authorization"] = f"Bearer {key}"
            connector = aiohttp.TCPConnector(
                limit=self.settings.pool_size, keepalive_timeout=self.settings.keepalive_s
            )
            self._session = aiohttp.ClientSession(headers=headers, connector=connector)
        return self._session

    def timeout(self, total: float | None = None, sock_read: float | None = None) -> aiohttp.ClientTimeout:
        """Per request. ``total`` includes the wait for a free pooled connection; ``sock_connect``
        (not aiohttp's ``connect``, which also counts that wait) bounds the TCP connect itself."""
        return aiohttp.ClientTimeout(
            total=total or self.settings.timeout,
            sock_connect=self.settings.connect_timeout,
            sock_read=sock_read,
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
