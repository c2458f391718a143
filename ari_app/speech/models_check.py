"""``ari-app models check``: load each configured speech engine, run it once on real input, time it.

Every failure becomes a report line naming what to install or fix, never a traceback.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ari_app.speech.asr import Asr, OpenAiAsr, Transcript, WhisperAsr, make_asr
from ari_app.speech.audio import frames, pcm_ms
from ari_app.speech.errors import SpeechEngineError
from ari_app.speech.evaluation import pocketsphinx_clips, telephone_channel, word_error_rate
from ari_app.speech.tts import make_tts
from ari_app.speech.vad import make_vad

if TYPE_CHECKING:
    from ari_app.config import Settings

CHECK_SENTENCE = "Thank you for calling. How can I help you today?"


@dataclass(frozen=True)
class ModelReport:
    kind: str  # vad | asr | tts
    engine: str
    ok: bool
    load_s: float
    run_s: float
    detail: str


async def _check_tts(settings: Settings, asr: WhisperAsr | None) -> ModelReport:
    t0 = time.perf_counter()
    tts = make_tts(settings.speech.tts)  # no cache: we want to time synthesis itself
    started = time.perf_counter()
    first_ms = None
    chunks = []
    async for chunk in tts.synthesize(CHECK_SENTENCE):
        if first_ms is None:
            first_ms = (time.perf_counter() - started) * 1000
        chunks.append(chunk)
    pcm = b"".join(chunks)
    run = time.perf_counter() - started
    detail = f"first audio {first_ms or 0:.0f} ms, {pcm_ms(pcm)} ms of audio"
    if asr is not None:
        heard = asr.transcribe_sync(telephone_channel(pcm)).text
        detail += f", WER via ASR {word_error_rate(CHECK_SENTENCE, heard):.2f}"
    return _timed("tts", tts.identity.engine, started - t0, run, detail)


async def _transcribe_once(asr: Asr, pcm: bytes) -> Transcript:
    try:
        return await asr.transcribe(pcm)
    finally:
        external = getattr(asr, "primary", asr)
        if isinstance(external, OpenAiAsr):
            await external.close()


def _timed(kind: str, engine: str, load: float, run: float, detail: str) -> ModelReport:
    return ModelReport(kind, engine, True, round(load, 3), round(run, 3), detail)


def check_models(settings: Settings) -> list[ModelReport]:
    """Load and exercise the configured VAD, ASR and TTS. Blocking: call it from the CLI, not a call."""
    sp = settings.speech
    reports: list[ModelReport] = []
    try:
        clip = pocketsphinx_clips()[1]
    except FileNotFoundError:
        clip = None

    t0 = time.perf_counter()
    try:
        vad = make_vad(sp.vad)
        load = time.perf_counter() - t0
        audio = clip.pcm8k if clip else b"\0" * 32000
        t1 = time.perf_counter()
        probs = [vad.speech_probability(f) for f in frames(audio)]
        per_frame_us = (time.perf_counter() - t1) / max(1, len(probs)) * 1e6
        voiced = sum(p >= sp.turn.speech_threshold for p in probs)
        reports.append(
            _timed("vad", vad.name, load, per_frame_us / 1e6, f"{per_frame_us:.0f} µs/frame, {voiced} voiced")
        )
    except SpeechEngineError as e:
        reports.append(
            ModelReport("vad", sp.vad.engine, False, round(time.perf_counter() - t0, 3), 0.0, str(e))
        )

    whisper: WhisperAsr | None = None
    t0 = time.perf_counter()
    try:
        asr = make_asr(sp.asr, sp.cache_dir)
        load = time.perf_counter() - t0
        whisper = asr if isinstance(asr, WhisperAsr) else getattr(asr, "fallback", None)
        if clip is None:
            reports.append(_timed("asr", asr.name, load, 0.0, "loaded; no test clip (pocketsphinx-testdata)"))
        else:
            t1 = time.perf_counter()
            heard = asyncio.run(_transcribe_once(asr, clip.pcm8k))
            run = time.perf_counter() - t1
            rtf = run / (heard.duration_ms / 1000)
            wer = word_error_rate(clip.text, heard.text)
            reports.append(
                _timed("asr", asr.name, load, run, f"RTF {rtf:.2f}, WER {wer:.2f}: {heard.text!r}")
            )
    except SpeechEngineError as e:
        reports.append(
            ModelReport("asr", sp.asr.engine, False, round(time.perf_counter() - t0, 3), 0.0, str(e))
        )

    t0 = time.perf_counter()
    try:
        reports.append(asyncio.run(_check_tts(settings, whisper)))
    except SpeechEngineError as e:
        reports.append(
            ModelReport("tts", sp.tts.engine, False, round(time.perf_counter() - t0, 3), 0.0, str(e))
        )
    return reports
