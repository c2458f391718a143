"""speech server: ``POST /v1/audio/transcriptions`` with our embedded Whisper (OpenAI's form fields).

The upload is a WAV (16-bit PCM, any rate, mono; other channels are dropped) resampled to 8 kHz,
the rate our own pipeline hands Whisper, so a remote transcript matches an embedded one.
"""

from __future__ import annotations

import time
import wave
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web
from multidict import MultiDictProxy

from ari_app.media.constants import SAMPLE_RATE
from ari_app.speech.audio import float_to_pcm, read_wav, resample
from ari_app.speech.expectation import Expectation
from ari_app.speech_server.errors import BadRequest

if TYPE_CHECKING:
    from ari_app.speech.asr import Transcript
    from ari_app.speech_server.app import Engines

RESPONSE_FORMATS = ("json", "verbose_json", "text")
ASR_ALIASES = ("whisper-1",)  # what OpenAI clients send by default


@dataclass(frozen=True)
class _Prompted(Expectation):
    """A client's free ``prompt`` as Whisper's biasing text (our own expectations build theirs)."""

    prompt: str = ""

    def whisper_prompt(self) -> str | None:
        return self.prompt or None


async def transcriptions(request: web.Request, engines: Engines) -> web.StreamResponse:
    try:
        form = await request.post()
    except ValueError as e:  # a malformed multipart body
        raise BadRequest(f"could not read the multipart form: {e}", "file") from None
    model = _text(form, "model", required=True)
    if model not in engines.asr_models:
        raise BadRequest(
            f"model {model!r} is not served here; use one of {list(engines.asr_models)}", "model"
        )
    language = _text(form, "language") or engines.asr.language
    if language != engines.asr.language:
        raise BadRequest(f"language {language!r} is not supported by {engines.asr.name}", "language")
    fmt = _text(form, "response_format") or "json"
    if fmt not in RESPONSE_FORMATS:
        raise BadRequest(f"response_format {fmt!r} is not supported; use one of {list(RESPONSE_FORMATS)}",
                         "response_format")  # fmt: skip
    pcm8k = _audio(form)
    prompt = _text(form, "prompt")
    started = time.perf_counter()
    t = await engines.asr.transcribe(pcm8k, _Prompted("text", prompt=prompt) if prompt else None)
    headers = {"openai-processing-ms": str(round((time.perf_counter() - started) * 1000))}
    if fmt == "text":
        return web.Response(text=t.text, headers=headers)
    if fmt == "json":
        return web.json_response({"text": t.text}, headers=headers)
    return web.json_response(_verbose(t, language), headers=headers)


def _verbose(t: Transcript, language: str) -> dict[str, object]:
    """OpenAI's verbose_json. We decode without timestamps: each segment spans the whole upload."""
    duration = t.duration_ms / 1000
    segments = [
        {"id": i, "seek": 0, "start": 0.0, "end": duration, "text": text, "temperature": 0.0,
         "avg_logprob": round(avg_logprob, 4), "no_speech_prob": round(no_speech_prob, 4)}
        for i, (text, avg_logprob, no_speech_prob) in enumerate(t.segments)
    ]  # fmt: skip
    return {"task": "transcribe", "language": language, "duration": duration, "text": t.text,
            "segments": segments}  # fmt: skip


def _text(form: MultiDictProxy[str | bytes | web.FileField], name: str, required: bool = False) -> str:
    value = form.get(name)
    if value is None or value == "":
        if required:
            raise BadRequest(f"'{name}' is required", name)
        return ""
    if not isinstance(value, str):
        raise BadRequest(f"'{name}' must be a text field", name)
    return value.strip()


def _audio(form: MultiDictProxy[str | bytes | web.FileField]) -> bytes:
    upload = form.get("file")
    if upload is None:
        raise BadRequest("'file' is required: a WAV upload (multipart/form-data)", "file")
    if not isinstance(upload, web.FileField):
        raise BadRequest("'file' must be a file upload, not a text field", "file")
    try:
        samples, rate = read_wav(upload.file.read())
    except (wave.Error, EOFError, ValueError) as e:
        raise BadRequest(f"'file' is not a 16-bit PCM WAV file: {e}", "file") from None
    if not 4000 <= rate <= 192_000:
        raise BadRequest(f"'file' has an implausible sample rate ({rate} Hz)", "file")
    return float_to_pcm(resample(samples, rate, SAMPLE_RATE))
