"""Speech on an inference server: our clients (OpenAiAsr, OpenAiTts, the fallbacks, the pool)
against the real speech server serving our embedded Whisper and hibari, in-process on loopback,
and against tiny misbehaving servers (stall, 500, garbage).

Models load once per module; run with ``pytest -m models tests/speech``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from ari_app.speech.asr import FallbackAsr, OpenAiAsr, WhisperAsr
from ari_app.speech.audio import float_to_pcm, pcm_ms, pcm_to_float, resample, wav_bytes
from ari_app.speech.evaluation import telephone_channel, word_error_rate
from ari_app.speech.remote_tts import FallbackCachedTts, FallbackTts, OpenAiTts
from ari_app.speech.settings import (
    OpenAiAsrSettings,
    OpenAiTtsSettings,
    SpeechServerSettings,
    TtsSettings,
)
from ari_app.speech.tts import make_tts, prepare_text
from ari_app.speech.tts_engines import HibariTts
from ari_app.speech_server import Engines, build_app

pytestmark = pytest.mark.models

SENTENCE = "Thank you for calling, this is the billing line. How can I help you today?"
# hibari -> µ-law -> tiny.en: 0.00 on these sentences (tests/models); a word of slack.
WER_BOUND = 0.15

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture(scope="module")
def whisper() -> WhisperAsr:
    return WhisperAsr("tiny.en", threads=2)


@pytest.fixture(scope="module")
def hibari() -> HibariTts:
    return HibariTts()


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, handler_cancellation=True)  # a stalled handler ends with its client
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/v1"


@pytest.fixture(scope="module")
async def server(whisper: WhisperAsr, hibari: HibariTts) -> AsyncIterator[str]:
    """The real speech server (``ari-app speech serve``'s app) with our engines; its base URL."""
    runner, url = await serve(build_app(Engines(whisper, hibari, SpeechServerSettings())))
    yield url
    await runner.cleanup()


async def tiny_server(path: str, handler: Handler) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_post(f"/v1{path}", handler)
    return await serve(app)


async def collect(tts: OpenAiTts | FallbackTts | FallbackCachedTts, text: str) -> tuple[bytes, list[bytes]]:
    chunks = [c async for c in tts.synthesize(text)]
    return b"".join(chunks), chunks


# ---- the server, with our engines ----------------------------------------------------------


async def test_transcription_round_trip_of_synthesised_speech(server: str, hibari: HibariTts) -> None:
    """A 16 kHz WAV upload (any rate is accepted) of telephone audio gives the words, and
    verbose_json carries OpenAI's per-segment avg_logprob and no_speech_prob."""
    pcm8k = telephone_channel(hibari.synthesize_sync(SENTENCE))
    pcm16k = float_to_pcm(resample(pcm_to_float(pcm8k), 8000, 16000))
    form = aiohttp.FormData()
    form.add_field("file", wav_bytes(pcm16k, 16000), filename="a.wav", content_type="audio/wav")
    form.add_field("model", "whisper-1")
    form.add_field("response_format", "verbose_json")
    async with aiohttp.ClientSession() as http, http.post(f"{server}/audio/transcriptions", data=form) as r:
        assert r.status == 200
        assert int(r.headers["openai-processing-ms"]) > 0
        data = await r.json()
    assert word_error_rate(SENTENCE, data["text"]) <= WER_BOUND, data["text"]
    assert abs(data["duration"] - pcm_ms(pcm8k) / 1000) < 0.01
    seg = data["segments"][0]
    assert -1.0 < seg["avg_logprob"] < 0.0 and 0.0 <= seg["no_speech_prob"] < 0.6

    # The same through our client: text plus a confidence derived from those segments.
    asr = OpenAiAsr(OpenAiAsrSettings(base_url=server))
    try:
        t = await asr.transcribe(pcm8k)
    finally:
        await asr.close()
    assert t.engine == "openai:whisper-1" and t.text == data["text"]
    assert t.confidence is not None and 0.3 < t.confidence <= 1.0


@pytest.mark.parametrize("fmt", ["pcm", "wav"])
async def test_tts_client_gives_8k_pcm_whose_asr_gives_the_words(
    server: str, hibari: HibariTts, whisper: WhisperAsr, fmt: str
) -> None:
    tts = OpenAiTts(OpenAiTtsSettings(base_url=server, response_format=fmt))  # type: ignore[arg-type]
    try:
        pcm, chunks = await collect(tts, SENTENCE)
    finally:
        await tts.close()
    assert tts.identity.engine == "openai" and tts.identity.version == "tts-1"
    assert all(len(c) % 2 == 0 for c in chunks) and len(chunks) >= len(prepare_text(SENTENCE))
    # The same engine spoke: the length is the embedded one's, give or take the pauses the server
    # adds at commas inside a clause (it splits every request's first sentence).
    embedded_ms = pcm_ms(hibari.synthesize_sync(SENTENCE))
    assert 0.9 * embedded_ms < pcm_ms(pcm) < 1.15 * embedded_ms
    heard = (await whisper.transcribe(telephone_channel(pcm))).text
    assert word_error_rate(SENTENCE, heard) <= WER_BOUND, heard


async def test_first_clause_arrives_before_the_last_is_synthesised(server: str) -> None:
    """Clause by clause: the first audio comes long before the whole prompt is done."""
    text = " ".join([SENTENCE] * 4)
    tts = OpenAiTts(OpenAiTtsSettings(base_url=server))
    started = time.perf_counter()
    first_at = None
    try:
        async for _ in tts.synthesize(text):
            first_at = first_at or time.perf_counter() - started
    finally:
        await tts.close()
    total = time.perf_counter() - started
    assert first_at is not None and first_at < total / 3


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/audio/speech", {"model": "tts-1", "voice": "alloy"}, "input"),
        ("/audio/speech", {"model": "tts-1", "voice": "alloy", "input": "   "}, "input"),
        ("/audio/speech", {"model": "gpt-4o", "voice": "alloy", "input": "Hi."}, "model"),
        ("/audio/speech", {"model": "tts-1", "input": "Hi."}, "voice"),
        ("/audio/speech", {"model": "tts-1", "voice": "a", "input": "Hi.", "response_format": "mp3"},
         "response_format"),
        ("/audio/speech", {"model": "tts-1", "voice": "a", "input": "Hi.", "speed": 3.0}, "speed"),
        ("/audio/speech", {"model": "tts-1", "voice": "a", "input": "Hi.", "speed": "fast"}, "speed"),
        ("/audio/speech", "not json", None),
        ("/audio/transcriptions", {"model": "whisper-1"}, "file"),
        ("/audio/transcriptions", {"model": "whisper-1", "file": b"ID3 an mp3"}, "file"),
        ("/audio/transcriptions", {"file": "wav"}, "model"),
        ("/audio/transcriptions", {"model": "whisper-1", "file": "wav", "language": "de"}, "language"),
        ("/audio/transcriptions", {"model": "whisper-1", "file": "wav", "response_format": "srt"},
         "response_format"),
    ],
)  # fmt: skip
async def test_bad_request_is_a_400_naming_the_field(
    server: str, path: str, body: dict[str, object] | str, param: str | None
) -> None:
    async with aiohttp.ClientSession() as http:
        if path == "/audio/speech":
            kwargs = {"json": body} if isinstance(body, dict) else {"data": body}
        else:
            assert isinstance(body, dict)
            form = aiohttp.FormData()
            for k, v in body.items():
                if k == "file":
                    v = wav_bytes(b"\0\0" * 800) if v == "wav" else v
                    form.add_field("file", v, filename="a.wav", content_type="audio/wav")
                else:
                    form.add_field(k, str(v))
            kwargs = {"data": form}
        async with http.post(f"{server}{path}", **kwargs) as r:  # type: ignore[arg-type]
            assert r.status == 400
            error = (await r.json())["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"
    assert "Traceback" not in error["message"] and (param is None or param in error["message"])


async def test_bearer_token(whisper: WhisperAsr, hibari: HibariTts) -> None:
    settings = SpeechServerSettings(api_key="s3cret")  # type: ignore[arg-type]
    runner, url = await serve(build_app(Engines(whisper, hibari, settings)))
    body = {"model": "tts-1", "voice": "alloy", "input": "Hello.", "response_format": "pcm"}
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(url.removesuffix("/v1") + "/healthz") as r:
                assert r.status == 200  # the probe needs no token
            async with http.post(f"{url}/audio/speech", json=body) as r:
                assert r.status == 401 and (await r.json())["error"]["message"]
            async with http.get(f"{url}/models", headers={"Authorization": "Bearer wrong"}) as r:
                assert r.status == 401
        tts = OpenAiTts(OpenAiTtsSettings(base_url=url, api_key="s3cret"))  # type: ignore[arg-type]
        try:
            pcm, _ = await collect(tts, "Hello.")
        finally:
            await tts.close()
        assert pcm_ms(pcm) > 200
    finally:
        await runner.cleanup()


# ---- timeouts and fallback -----------------------------------------------------------------


async def stall(request: web.Request) -> web.Response:
    await asyncio.sleep(5)
    return web.Response(body=b"\0\0" * 8000, content_type="audio/pcm")


async def status_500(request: web.Request) -> web.Response:
    return web.Response(status=500, text="model exploded")


async def json_garbage(request: web.Request) -> web.Response:
    return web.Response(text='{"text": "unterminated', content_type="application/json")


async def audio_garbage(request: web.Request) -> web.Response:
    return web.Response(body=b"this is not a wav file at all", content_type="audio/wav")


@pytest.mark.parametrize(
    ("handler", "reason"),
    [(stall, "timed out"), (status_500, "HTTP 500"), (json_garbage, "application/json"),
     (audio_garbage, "not a WAV")],
)  # fmt: skip
async def test_tts_falls_back_to_the_embedded_engine(
    hibari: HibariTts, handler: Handler, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    runner, url = await tiny_server("/audio/speech", handler)
    remote = OpenAiTts(OpenAiTtsSettings(base_url=url, response_format="wav", first_audio_timeout=0.5))
    tts = FallbackTts(remote, hibari)
    started = time.perf_counter()
    try:
        with caplog.at_level(logging.WARNING, logger="ari_app.speech.remote_tts"):
            pcm, _ = await collect(tts, SENTENCE)
    finally:
        await tts.close()
        await runner.cleanup()
    assert time.perf_counter() - started < 2.5  # the 5 s stall was cut at 0.5 s
    assert pcm == hibari.synthesize_sync(SENTENCE)  # every clause, from the embedded engine
    assert tts.fallbacks == 1
    [record] = [r for r in caplog.records if r.name == "ari_app.speech.remote_tts"]
    assert reason in record.getMessage() and " ms " in record.getMessage()


async def test_tts_fallback_resumes_at_the_clause_that_failed(hibari: HibariTts) -> None:
    """The server speaks the first clause, then stalls: the caller hears that clause from the
    server and the rest from the embedded engine, nothing twice and nothing lost."""
    first_clause = b"\x10\x00" * 4000
    requests = 0

    async def first_then_stall(request: web.Request) -> web.Response:
        nonlocal requests
        requests += 1
        if (await request.json())["input"].startswith("Thank you"):
            return web.Response(
                body=first_clause, content_type="audio/pcm", headers={"X-Sample-Rate": "8000"}
            )
        return await stall(request)

    runner, url = await tiny_server("/audio/speech", first_then_stall)
    tts = FallbackTts(OpenAiTts(OpenAiTtsSettings(base_url=url, first_audio_timeout=0.5)), hibari)
    try:
        pcm, _ = await collect(tts, SENTENCE)
        clauses = prepare_text(SENTENCE)
        assert len(clauses) == 3
        rest = b"".join(hibari.render_clause(c, p) for c, p in clauses[1:])
        assert pcm == first_clause + b"\0\0" * (8 * clauses[0][1]) + rest
        # Held off after the failure: the next prompt goes straight to the embedded engine.
        seen = requests
        again, _ = await collect(tts, "Goodbye.")
        assert again == hibari.synthesize_sync("Goodbye.") and requests == seen
        assert tts.fallbacks == 2
    finally:
        await tts.close()
        await runner.cleanup()


@pytest.mark.parametrize("handler", [stall, status_500, json_garbage])
async def test_asr_falls_back_to_the_embedded_engine(
    whisper: WhisperAsr, hibari: HibariTts, handler: Handler
) -> None:
    pcm = telephone_channel(hibari.synthesize_sync(SENTENCE))
    runner, url = await tiny_server("/audio/transcriptions", handler)
    remote = OpenAiAsr(OpenAiAsrSettings(base_url=url, timeout=0.5))
    asr = FallbackAsr(remote, whisper, timeout=0.5)
    started = time.perf_counter()
    try:
        t = await asr.transcribe(pcm)
    finally:
        await asr.close()
        await runner.cleanup()
    assert time.perf_counter() - started < 2.5
    assert t.engine == "whisper-tiny.en" and asr.fallbacks == 1
    assert word_error_rate(SENTENCE, t.text) <= WER_BOUND


async def test_down_server_costs_a_connect_not_the_timeout(hibari: HibariTts) -> None:
    """Nothing listening: the fallback answers at once, not after first_audio_timeout."""
    runner, url = await tiny_server("/audio/speech", stall)
    await runner.cleanup()  # the port is now closed
    tts = FallbackTts(OpenAiTts(OpenAiTtsSettings(base_url=url, first_audio_timeout=3.0)), hibari)
    started = time.perf_counter()
    try:
        pcm, _ = await collect(tts, "Hello.")
    finally:
        await tts.close()
    assert time.perf_counter() - started < 1.0 and pcm == hibari.synthesize_sync("Hello.")


# ---- the connection pool -------------------------------------------------------------------


class Counting:
    """A server handler that records how many requests are in flight at once, and from which
    client ports (each port is one TCP connection)."""

    def __init__(self, reply: Callable[[], web.Response]) -> None:
        self.reply = reply
        self.in_flight = 0
        self.peak = 0
        self.ports: set[int] = set()

    async def __call__(self, request: web.Request) -> web.Response:
        await request.read()
        self.ports.add(request.transport.get_extra_info("peername")[1])  # type: ignore[union-attr]
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(0.15)
            return self.reply()
        finally:
            self.in_flight -= 1


async def test_pool_limit_is_honoured_by_both_clients() -> None:
    tts_handler = Counting(lambda: web.Response(body=b"\1\0" * 800, content_type="audio/pcm",
                                                headers={"X-Sample-Rate": "8000"}))  # fmt: skip
    asr_handler = Counting(lambda: web.json_response({"text": "yes"}))
    app = web.Application()
    app.router.add_post("/v1/audio/speech", tts_handler.__call__)
    app.router.add_post("/v1/audio/transcriptions", asr_handler.__call__)
    runner, url = await serve(app)
    tts = OpenAiTts(OpenAiTtsSettings(base_url=url, pool_size=2, first_audio_timeout=5))
    asr = OpenAiAsr(OpenAiAsrSettings(base_url=url, pool_size=2, timeout=5))
    try:
        outs = await asyncio.gather(*(collect(tts, "Hello there.") for _ in range(6)))
        texts = await asyncio.gather(*(asr.transcribe(b"\0\0" * 800) for _ in range(6)))
    finally:
        await tts.close()
        await asr.close()
        await runner.cleanup()
    assert all(pcm == b"\1\0" * 800 for pcm, _ in outs) and all(t.text == "yes" for t in texts)
    for handler in (tts_handler, asr_handler):
        assert handler.peak == 2  # concurrent, but never more than the pool
        assert len(handler.ports) <= 2  # and the connections were kept alive and reused


# ---- the prompt cache and make_tts ---------------------------------------------------------


async def test_cache_stores_server_audio_only(server: str, hibari: HibariTts, tmp_path: Path) -> None:
    runner, stalled = await tiny_server("/audio/speech", stall)
    try:
        for url, stored in [(stalled, False), (server, True)]:
            remote = OpenAiTts(OpenAiTtsSettings(base_url=url, first_audio_timeout=0.5))
            cached = FallbackCachedTts(FallbackTts(remote, hibari, hold_off_s=0), tmp_path)
            cached.allow([SENTENCE])
            try:
                pcm, _ = await collect(cached, SENTENCE)
            finally:
                await remote.close()
            assert pcm_ms(pcm) > 1000
            assert cached.path_for(SENTENCE).is_file() is stored  # the fallback voice is never stored
            if stored:
                assert cached.lookup(SENTENCE) == pcm
    finally:
        await runner.cleanup()


def test_make_tts_builds_the_remote_engine(tmp_path: Path) -> None:
    remote = TtsSettings(engine="openai", fallback_to_embedded=False)
    tts = make_tts(remote, tmp_path)
    assert tts.identity.engine == "openai" and tts.identity.voice == "alloy"
    assert isinstance(make_tts(remote), OpenAiTts)
    with_fallback = make_tts(TtsSettings(engine="openai", fallback_engine="flite"), tmp_path)
    assert (
        isinstance(with_fallback, FallbackCachedTts)
        and with_fallback.inner.fallback.identity.engine == "flite"
    )
    with pytest.raises(ValueError, match="http://"):
        OpenAiTtsSettings(base_url="127.0.0.1:8765/v1")
