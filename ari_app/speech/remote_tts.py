"""speech: TTS on an external server speaking OpenAI's ``POST {base_url}/audio/speech``.

For workers with no local models (docs/remote_speech.md). The text is cleaned and split exactly
as for the embedded engines (tts.prepare_text) and sent one clause per request, the next clause
requested while the current one streams, so the caller hears the first clause after one short
request rather than after the whole prompt. ``FallbackTts`` speaks with an embedded engine when
the server errors or stalls, from the clause that failed on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from ari_app.media.constants import SAMPLE_RATE
from ari_app.speech.cache import CachedTts
from ari_app.speech.errors import SpeechEngineError
from ari_app.speech.http_pool import ServerPool
from ari_app.speech.pcm_stream import PcmStream
from ari_app.speech.settings import OpenAiTtsSettings
from ari_app.speech.tts import ClauseTts, TtsIdentity, prepare_text

log = logging.getLogger(__name__)

# What a failing server can raise; anything else is our bug and is not papered over.
SERVER_ERRORS = (TimeoutError, aiohttp.ClientError, SpeechEngineError, OSError, ValueError)

# Our own server (ari-app speech serve) names its pcm rate; OpenAI's pcm is always 24 kHz.
RATE_HEADER = "X-Sample-Rate"

_Item = bytes | BaseException | None  # a queue of one clause's audio: chunks, then None or an error


class OpenAiTts:
    """The client. One pooled keep-alive session (http_pool.py); ``close()`` when done."""

    def __init__(self, settings: OpenAiTtsSettings, rate: float = 1.0, normalize_text: bool = True) -> None:
        self.settings = settings
        self.rate = rate
        self.normalize_text = normalize_text
        # engine/model/voice/rate: what changes the audio, so the prompt cache keys stay right.
        self.identity = TtsIdentity("openai", settings.model, settings.voice, rate, None)
        self.url = f"{settings.base_url}/audio/speech"
        self._pool = ServerPool(settings)

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        async for _index, chunk, _done in self.stream_clauses(prepare_text(text, self.normalize_text)):
            if chunk:
                yield chunk

    async def stream_clauses(self, clauses: list[tuple[str, int]]) -> AsyncIterator[tuple[int, bytes, bool]]:
        """(clause index, 8 kHz PCM, clause complete). The complete marker comes with the pause
        after the clause, so a fallback knows which clauses the caller has heard in full."""
        queues: list[asyncio.Queue[_Item]] = []
        tasks: list[asyncio.Task[None]] = []

        def request(i: int) -> None:
            queues.append(asyncio.Queue())
            tasks.append(asyncio.create_task(self._fetch(clauses[i][0], queues[i])))

        try:
            for i, (clause, pause_ms) in enumerate(clauses):
                if i == 0:
                    request(0)
                if i + 1 < len(clauses):
                    request(i + 1)  # one clause ahead: it synthesises while this one plays
                heard = 0
                while (item := await queues[i].get()) is not None:
                    if isinstance(item, BaseException):
                        raise item
                    heard += len(item)
                    yield i, item, False
                if not heard:
                    raise SpeechEngineError(f"TTS server {self.url} sent no audio for {clause!r}")
                yield i, b"\0\0" * (SAMPLE_RATE * pause_ms // 1000), True
        finally:  # also on barge-in (the consumer closed us): drop what is still in flight
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _fetch(self, clause: str, out: asyncio.Queue[_Item]) -> None:
        s = self.settings
        body = {"model": s.model, "input": clause, "voice": s.voice, "response_format": s.response_format,
                "speed": self.rate}  # fmt: skip
        try:
            # No audio within first_audio_timeout (headers, WAV header and first samples) is a
            # stall; after that only the request's total timeout applies.
            async with asyncio.timeout(s.first_audio_timeout) as first_audio:
                timeout = self._pool.timeout(sock_read=s.first_audio_timeout)
                async with self._pool.session().post(self.url, json=body, timeout=timeout) as r:
                    decoder = self._decoder(r)
                    async for data in r.content.iter_any():
                        if pcm := decoder.feed(data):
                            first_audio.reschedule(None)
                            out.put_nowait(pcm)
                    if pcm := decoder.flush():
                        out.put_nowait(pcm)
            out.put_nowait(None)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # handed to the consumer, which decides (FallbackTts catches SERVER_ERRORS)
            out.put_nowait(e)

    def _decoder(self, r: aiohttp.ClientResponse) -> PcmStream:
        if r.status != 200:
            raise SpeechEngineError(f"TTS server {self.url} answered HTTP {r.status}")
        ctype = r.headers.get("Content-Type", "")
        if ctype.startswith(("application/json", "text/")):  # an error page with status 200
            raise SpeechEngineError(f"TTS server {self.url} sent {ctype}, not audio")
        rate = self.settings.pcm_rate
        if header := r.headers.get(RATE_HEADER):
            if not header.isdigit() or not 4000 <= int(header) <= 192_000:
                raise SpeechEngineError(f"TTS server {self.url} sent {RATE_HEADER}: {header[:20]!r}")
            rate = int(header)
        return PcmStream(self.settings.response_format, rate)

    async def close(self) -> None:
        await self._pool.close()


class FallbackTts:
    """The server, and an embedded engine when it errors or stalls. After a failure the server
    is left alone for ``hold_off_s`` so a dead one does not cost every prompt its timeout."""

    def __init__(self, primary: OpenAiTts, fallback: ClauseTts, hold_off_s: float = 5.0) -> None:
        self.primary = primary
        self.fallback = fallback
        self.identity = primary.identity  # the cache stores only server audio (FallbackCachedTts)
        self.normalize_text = primary.normalize_text
        self.hold_off_s = hold_off_s
        self.fallbacks = 0  # syntheses the fallback (partly) spoke
        self._skip_until = 0.0

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        clauses = prepare_text(text, self.normalize_text)
        resume = 0  # first clause the caller has not heard in full
        started = time.monotonic()
        if started >= self._skip_until:
            try:
                async for index, chunk, done in self.primary.stream_clauses(clauses):
                    if chunk:
                        yield chunk
                    if done:
                        resume = index + 1
                return
            except SERVER_ERRORS as e:
                self._skip_until = time.monotonic() + self.hold_off_s
                reason = "timed out" if isinstance(e, TimeoutError) else f"failed: {e or type(e).__name__}"
                log.warning("TTS %s %s after %.0f ms (clause %d of %d); speaking with %s",
                            self.primary.url, reason, (time.monotonic() - started) * 1000, resume + 1,
                            len(clauses), self.fallback.identity.engine)  # fmt: skip
        self.fallbacks += 1
        loop = asyncio.get_running_loop()
        # A clause cut off mid-way is said again from its start: a repeated fragment beats a lost one.
        for clause, pause_ms in clauses[resume:]:
            pcm = await loop.run_in_executor(None, self.fallback.render_clause, clause, pause_ms)
            if pcm:
                yield pcm

    async def close(self) -> None:
        await self.primary.close()


class FallbackCachedTts(CachedTts):
    """The prompt cache over FallbackTts. A prompt the fallback voice spoke (even in part) is not
    stored under the server's identity: it would keep playing in the other voice once the server
    is back. Conservative: any fallback while a prompt was synthesised skips storing it."""

    inner: FallbackTts

    def __init__(self, tts: FallbackTts, cache_dir: Path, max_bytes: int = 200 * 1024 * 1024) -> None:
        super().__init__(tts, cache_dir, max_bytes)
        self._fallbacks_at_start: dict[Path, int] = {}

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        path = self.path_for(text)
        self._fallbacks_at_start[path] = self.inner.fallbacks
        try:
            async for chunk in super().synthesize(text):
                yield chunk
        finally:
            self._fallbacks_at_start.pop(path, None)

    def _store(self, path: Path, audio: bytes) -> None:
        if self._fallbacks_at_start.get(path) != self.inner.fallbacks:
            log.info("prompt cache: not storing %s (the fallback engine spoke)", path.name[:12])
            return
        super()._store(path, audio)
