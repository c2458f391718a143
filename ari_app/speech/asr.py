"""Speech recognition: one utterance of 8 kHz int16 PCM in, one Transcript out.

Engines: embedded faster-whisper (``WhisperAsr``), an external OpenAI-compatible server
(``OpenAiAsr``), and ``FallbackAsr`` which keeps the call going on the embedded engine when the
external one fails.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp
import numpy as np

from ari_app import stage_cpu
from ari_app.media.constants import SAMPLE_RATE
from ari_app.speech.audio import pcm_ms, pcm_to_float, resample, wav_bytes
from ari_app.speech.errors import SpeechEngineError, import_engine_module
from ari_app.speech.expectation import Expectation
from ari_app.speech.http_pool import ServerPool
from ari_app.speech.scheduler import DecodeScheduler
from ari_app.speech.whisper_models import model_dir
from ari_app.speech.whisper_short import ShortContextDecoder

if TYPE_CHECKING:
    from ari_app.speech.settings import AsrSettings, OpenAiAsrSettings

log = logging.getLogger(__name__)

WHISPER_RATE = 16000


MAX_DEFAULT_DECODE_WORKERS = 8  # default pool size cap (decode_workers = 0)


@dataclass(frozen=True)
class Transcript:
    text: str
    confidence: float | None  # 0..1; None when the engine reports nothing to derive it from
    duration_ms: int  # audio length
    engine: str
    alternatives: tuple[str, ...] = ()  # other hypotheses, best first, when asked for several
    # Whisper's (text, avg_logprob, no_speech_prob) per kept segment, when the engine has them
    # (the speech server reports them as OpenAI's verbose_json does).
    segments: tuple[tuple[str, float, float], ...] = ()
    # The answer scored against the audio over the open question's closed set (a weekday, an
    # offered time, a repaired number, the yes or no an answer starts with), when one won clearly:
    # it carries its own evidence, whatever the free decode's confidence (speech/closed_set.py).
    picked: str | None = None


class Asr(Protocol):
    name: str

    async def transcribe(
        self, pcm8k: bytes, expect: Expectation | None = None, *, speculative: bool = False
    ) -> Transcript:
        """``expect``: what the open question expects (biasing, several hypotheses); may be ignored.
        ``speculative``: a guess at a pause, less urgent than a final decode; an engine may drop it
        (raise DecodeDropped) when it is stale."""
        ...


def segment_confidence(segments: list[tuple[str, float, float]]) -> float | None:
    """Confidence from Whisper's per-segment (text, avg_logprob, no_speech_prob), weighted by text length.

    exp(avg_logprob) is the mean token probability; (1 - no_speech_prob) discounts segments Whisper
    itself suspects are silence or noise.
    """
    weighted, total = 0.0, 0
    for text, avg_logprob, no_speech_prob in segments:
        n = max(1, len(text.strip()))
        weighted += n * math.exp(min(0.0, avg_logprob)) * (1.0 - no_speech_prob)
        total += n
    return round(weighted / total, 4) if total else None


class WhisperAsr:
    """faster-whisper on CPU, int8, greedy, English; blocking decode in a thread."""

    def __init__(
        self,
        model: str = "tiny.en",
        cache_dir: Path | None = None,
        threads: int = 2,
        language: str = "en",
        context_s: float = 10.0,
        scheduler: DecodeScheduler | None = None,
    ) -> None:
        fw = import_engine_module("ASR", "whisper", "faster_whisper", "faster-whisper")
        before = stage_cpu.thread_ids()
        path = model_dir(model, cache_dir or Path.home() / ".cache" / "ari-app" / "speech")
        try:
            self._scheduler = scheduler or DecodeScheduler(workers=1)
            self._model = fw.WhisperModel(
                str(path), device="cpu", compute_type="int8", cpu_threads=threads,
                num_workers=self._scheduler.workers,  # CTranslate2 runs that many decodes in parallel
            )  # fmt: skip
        except (RuntimeError, ValueError, OSError) as e:
            raise SpeechEngineError(
                f"ASR engine 'whisper' failed to load model {model} from {path}: {e}"
            ) from None
        self.name = f"whisper-{model}"
        self.model = model
        self.language = language
        self._short = ShortContextDecoder(self._model, language, context_s) if context_s < 30 else None
        self._decode(np.zeros(WHISPER_RATE // 2, dtype=np.float32))  # warm-up: first call is slow
        stage_cpu.tag_new_threads("asr_engine_threads", before)

    def _decode(
        self, audio16k: np.ndarray, expect: Expectation | None = None
    ) -> tuple[str, list[tuple[str, float, float]], tuple[str, ...], str | None]:
        if self._short is not None:
            prompt, n_best = (expect.whisper_prompt(), expect.n_best) if expect else (None, 1)
            d = self._short.decode(audio16k, prompt, n_best, expect.candidates if expect else (),
                                   expect.digits if expect and expect.kind == "digits" else None,
                                   yes_no=expect is not None and expect.kind == "yes_no",
                                   answer=expect is not None and expect.kind != "request")  # fmt: skip
            # Whisper's own hallucination rule: likely silence and low confidence -> nothing said.
            if d.no_speech_prob > 0.6 and d.avg_logprob < -1.0:
                return "", [], (), None
            picked = d.picked.text if d.picked else None
            return d.text, [(d.text, d.avg_logprob, d.no_speech_prob)], d.alternatives, picked
        segments, _info = self._model.transcribe(
            audio16k,
            language=self.language,
            beam_size=1,
            vad_filter=False,
            condition_on_previous_text=False,
            without_timestamps=True,
            temperature=0.0,  # no sampling fallback: deterministic, and no 2-3 s outliers
        )
        kept: list[tuple[str, float, float]] = []
        for seg in segments:
            # Whisper's own hallucination rule: likely silence and low confidence -> drop it.
            if seg.no_speech_prob > 0.6 and seg.avg_logprob < -1.0:
                continue
            kept.append((seg.text, seg.avg_logprob, seg.no_speech_prob))
        text = " ".join(t.strip() for t, _, _ in kept).strip()
        return text, kept, (), None

    def transcribe_sync(self, pcm8k: bytes, expect: Expectation | None = None) -> Transcript:
        audio = resample(pcm_to_float(pcm8k), SAMPLE_RATE, WHISPER_RATE)
        if audio.size == 0:
            return Transcript("", None, 0, self.name)
        text, segments, alternatives, picked = self._decode(audio, expect)
        return Transcript(text, segment_confidence(segments), pcm_ms(pcm8k), self.name, alternatives,
                          tuple(segments), picked)  # fmt: skip

    async def transcribe(
        self, pcm8k: bytes, expect: Expectation | None = None, *, speculative: bool = False
    ) -> Transcript:
        """Decode on the shared scheduler; a speculative decode may raise DecodeDropped (stale)."""
        return await self._scheduler.run(lambda: self.transcribe_sync(pcm8k, expect), speculative=speculative)


class OpenAiAsr:
    """An external server speaking OpenAI's ``POST {base_url}/audio/transcriptions`` (WAV upload),
    over one pooled keep-alive session (http_pool.py)."""

    def __init__(self, settings: OpenAiAsrSettings, language: str = "en") -> None:
        self.settings = settings
        self.language = language
        self.name = f"openai:{settings.model}"
        self._pool = ServerPool(settings)

    async def transcribe(
        self, pcm8k: bytes, expect: Expectation | None = None, *, speculative: bool = False
    ) -> Transcript:
        form = aiohttp.FormData()
        form.add_field("file", wav_bytes(pcm8k), filename="utterance.wav", content_type="audio/wav")
        form.add_field("model", self.settings.model)
        form.add_field("language", self.language)
        if expect is not None and (prompt := expect.whisper_prompt()):
            form.add_field("prompt", prompt)  # OpenAI's biasing field; Whisper servers honour it
        # verbose_json carries per-segment avg_logprob/no_speech_prob; plain servers ignore it.
        form.add_field("response_format", "verbose_json")
        url = f"{self.settings.base_url}/audio/transcriptions"
        async with self._pool.session().post(url, data=form, timeout=self._pool.timeout()) as r:
            if r.status != 200:
                body = (await r.text())[:200]
                raise SpeechEngineError(f"ASR server {url} answered HTTP {r.status}: {body}")
            data: dict[str, Any] = await r.json(content_type=None)
        if not isinstance(data, dict) or not isinstance(data.get("text"), str):
            raise SpeechEngineError(f"ASR server {url} sent no 'text' in its answer: {str(data)[:200]}")
        try:
            segments = [
                (str(s.get("text", "")), float(s["avg_logprob"]), float(s.get("no_speech_prob", 0.0)))
                for s in data.get("segments") or []
                if isinstance(s, dict) and "avg_logprob" in s
            ]
        except (TypeError, ValueError):  # e.g. "avg_logprob": null
            raise SpeechEngineError(f"ASR server {url} sent malformed segments: {str(data)[:200]}") from None
        return Transcript(data["text"].strip(), segment_confidence(segments), pcm_ms(pcm8k), self.name,
                          segments=tuple(segments))  # fmt: skip

    async def close(self) -> None:
        await self._pool.close()


class FallbackAsr:
    """Try ``primary``; on error or timeout log it and answer with ``fallback`` so the call continues."""

    def __init__(self, primary: Asr, fallback: Asr, timeout: float | None = None) -> None:
        self.primary = primary
        self.fallback = fallback
        self.timeout = timeout
        self.name = f"{primary.name}|{fallback.name}"
        self.fallbacks = 0  # how often the fallback answered (exported as a metric by the caller)

    async def transcribe(
        self, pcm8k: bytes, expect: Expectation | None = None, *, speculative: bool = False
    ) -> Transcript:
        started = time.monotonic()
        try:
            return await asyncio.wait_for(
                self.primary.transcribe(pcm8k, expect, speculative=speculative), self.timeout
            )
        except (TimeoutError, aiohttp.ClientError, SpeechEngineError, OSError, ValueError) as e:
            self.fallbacks += 1
            reason = "timed out" if isinstance(e, TimeoutError) else f"failed: {e or type(e).__name__}"
            log.warning(
                "ASR %s %s after %.0f ms; using %s",
                self.primary.name,
                reason,
                (time.monotonic() - started) * 1000,
                self.fallback.name,
            )
            return await self.fallback.transcribe(pcm8k, expect, speculative=speculative)

    async def close(self) -> None:
        for engine in (self.primary, self.fallback):
            if (close := getattr(engine, "close", None)) is not None:
                await close()


def make_asr(settings: AsrSettings, cache_dir: Path) -> Asr:
    """The configured ASR. Loading Whisper takes a second or two: do it once per process and share it."""

    def embedded() -> WhisperAsr:
        workers = settings.decode_workers or default_decode_workers()
        scheduler = DecodeScheduler(workers, settings.speculative_max_wait_ms / 1000)
        return WhisperAsr(settings.whisper_model, cache_dir, settings.whisper_threads, settings.language,
                          settings.whisper_context_s, scheduler)  # fmt: skip

    if settings.engine == "whisper":
        return embedded()
    external = OpenAiAsr(settings.openai, settings.language)
    if not settings.fallback_to_embedded:
        return external
    return FallbackAsr(external, embedded(), timeout=settings.openai.timeout)


def default_decode_workers() -> int:
    """Decodes at once: one per core, each single-threaded (benchmarks/asr_workers.py: on 2 cores
    2 x 1 thread beats 1 x 2 for bursts and throughput). Capped: each worker holds a model replica."""
    return max(1, min(MAX_DEFAULT_DECODE_WORKERS, os.cpu_count() or 1))
