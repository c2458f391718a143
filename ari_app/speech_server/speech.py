"""speech server: ``POST /v1/audio/speech`` with our embedded TTS, streamed clause by clause.

Unlike OpenAI (whose "pcm" is 24 kHz), our ``pcm`` is 8 kHz int16 little-endian mono, the
telephone rate our engines already produce, and the ``X-Sample-Rate`` header says so. ``wav`` is
the same audio with a WAV header of unknown length (streamed). mp3/opus/aac/flac are not offered.
"""

from __future__ import annotations

import contextlib
import json
import struct
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ari_app.media.constants import SAMPLE_RATE
from ari_app.speech_server.errors import STREAMING, BadRequest

if TYPE_CHECKING:
    from ari_app.speech_server.app import Engines

RESPONSE_FORMATS = ("pcm", "wav")
TTS_ALIASES = ("tts-1", "tts-1-hd")  # what OpenAI clients send
RATE_HEADER = "X-Sample-Rate"


def streaming_wav_header(rate: int = SAMPLE_RATE) -> bytes:
    """RIFF/WAVE header for 16-bit mono PCM whose length is not known yet (sizes 0xFFFFFFFF)."""
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    return b"RIFF\xff\xff\xff\xffWAVEfmt " + struct.pack("<I", 16) + fmt + b"data\xff\xff\xff\xff"


async def speech(request: web.Request, engines: Engines) -> web.StreamResponse:
    body = await _json_body(request)
    model = _field(body, "model", str)
    if model not in engines.tts_models:
        raise BadRequest(
            f"model {model!r} is not served here; use one of {list(engines.tts_models)}", "model"
        )
    text = _field(body, "input", str).strip()
    if not text:
        raise BadRequest("'input' is empty", "input")
    if len(text) > engines.settings.max_input_chars:
        raise BadRequest(f"'input' is longer than {engines.settings.max_input_chars} characters", "input")
    # Our engines have one voice each: any name is accepted and speaks with it (see /v1/models).
    _field(body, "voice", str)
    # OpenAI's default is mp3, which we do not make: a self-describing WAV is the safe default.
    fmt = _field(body, "response_format", str, "wav")
    if fmt not in RESPONSE_FORMATS:
        raise BadRequest(f"response_format {fmt!r} is not supported; use one of {list(RESPONSE_FORMATS)}",
                         "response_format")  # fmt: skip
    speed = _field(body, "speed", (int, float), 1.0)
    rate = engines.tts.identity.rate
    if isinstance(speed, bool) or abs(float(speed) - rate) > 0.01:
        raise BadRequest(f"'speed' must be {rate} (the rate this server's engine was started with)", "speed")

    resp = web.StreamResponse(headers={"Content-Type": "audio/wav" if fmt == "wav" else "audio/pcm",
                                       RATE_HEADER: str(SAMPLE_RATE)})  # fmt: skip
    resp.enable_chunked_encoding()
    stream = engines.tts.synthesize(text)
    try:
        # The first clause is synthesised before the headers go out, so an engine that fails on
        # it still gets a proper 500; later failures cut the stream (the client sees it broken).
        first = await anext(stream, b"")
        request[STREAMING] = True
        await resp.prepare(request)
        if fmt == "wav":
            await resp.write(streaming_wav_header())
        if first:
            await resp.write(first)
        async for pcm in stream:
            await resp.write(pcm)
        await resp.write_eof()
    except ConnectionResetError:  # the client hung up (a barge-in): stop synthesising
        pass
    finally:
        with contextlib.suppress(Exception):
            await stream.aclose()
    return resp


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.read())
    except (UnicodeDecodeError, ValueError) as e:
        raise BadRequest(f"the body must be a JSON object: {e}") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def _field(body: dict[str, Any], name: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
    value = body.get(name, default)
    if value is None:
        raise BadRequest(f"'{name}' is required", name)
    if not isinstance(value, kind):
        raise BadRequest(f"'{name}' has the wrong type ({type(value).__name__})", name)
    return value
