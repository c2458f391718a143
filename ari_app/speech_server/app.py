"""speech server: the aiohttp application, its engines, and ``run`` for ``ari-app speech serve``."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

from ari_app.speech_server.errors import error_middleware
from ari_app.speech_server.speech import TTS_ALIASES, speech
from ari_app.speech_server.transcriptions import ASR_ALIASES, transcriptions

if TYPE_CHECKING:
    from ari_app.config import Settings
    from ari_app.speech.asr import WhisperAsr
    from ari_app.speech.settings import SpeechServerSettings
    from ari_app.speech.tts import ClauseTts

log = logging.getLogger(__name__)


@dataclass
class Engines:
    asr: WhisperAsr
    tts: ClauseTts
    settings: SpeechServerSettings
    asr_models: tuple[str, ...] = field(init=False)  # the ids /v1/models lists, then aliases
    tts_models: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        self.asr_models = (self.asr.name, *ASR_ALIASES)
        self.tts_models = (f"tts-{self.tts.identity.engine}", *TTS_ALIASES)


ENGINES = web.AppKey("engines", Engines)


def build_app(engines: Engines) -> web.Application:
    app = web.Application(
        middlewares=[error_middleware(engines.settings.api_key.get_secret_value())],
        client_max_size=engines.settings.max_upload_mb * 1024 * 1024,
    )
    app[ENGINES] = engines
    app.router.add_post("/v1/audio/transcriptions", _transcriptions)
    app.router.add_post("/v1/audio/speech", _speech)
    app.router.add_get("/v1/models", _models)
    app.router.add_get("/healthz", _healthz)
    return app


async def _transcriptions(request: web.Request) -> web.StreamResponse:
    return await transcriptions(request, request.app[ENGINES])


async def _speech(request: web.Request) -> web.StreamResponse:
    return await speech(request, request.app[ENGINES])


async def _models(request: web.Request) -> web.Response:
    e = request.app[ENGINES]
    data = [
        {"id": m, "object": "model", "created": 0, "owned_by": "ari-app"}
        for m in (*e.asr_models, *e.tts_models)
    ]
    return web.json_response({"object": "list", "data": data})


async def _healthz(request: web.Request) -> web.Response:
    e = request.app[ENGINES]
    return web.json_response({"status": "ok", "asr": e.asr.name, "tts": e.tts.identity.engine,
                              "tts_voice": e.tts.identity.voice})  # fmt: skip


def load_engines(settings: Settings) -> Engines:
    """The configured embedded engines (never a remote one: this is the remote). Seconds to load."""
    from ari_app.speech.asr import WhisperAsr, default_decode_workers
    from ari_app.speech.scheduler import DecodeScheduler
    from ari_app.speech.tts import make_embedded_tts

    a, t = settings.speech.asr, settings.speech.tts
    scheduler = DecodeScheduler(
        a.decode_workers or default_decode_workers(), a.speculative_max_wait_ms / 1000
    )
    asr = WhisperAsr(a.whisper_model, settings.speech.cache_dir, a.whisper_threads, a.language,
                     a.whisper_context_s, scheduler)  # fmt: skip
    tts = make_embedded_tts(t, t.fallback_engine if t.engine == "openai" else t.engine)
    return Engines(asr, tts, settings.speech.server)


def run(settings: Settings, host: str, port: int) -> None:
    """Load the engines, then serve until Ctrl-C (blocking)."""
    engines = load_engines(settings)
    log.info("speech server: %s and tts-%s on http://%s:%d/v1", engines.asr.name,
             engines.tts.identity.engine, host, port)  # fmt: skip
    web.run_app(build_app(engines), host=host, port=port, print=None, access_log=None)
