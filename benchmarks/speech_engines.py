"""Speech engine speeds on this machine: VAD µs/frame, ASR s/utterance and RTF, TTS time to first
audio (short/medium/long text), prompt-cache hit time.

    .venv/bin/python benchmarks/speech_engines.py [--asr tiny.en,base] [--tts hibari,piper,flite]

Audio: the transcribed human clips of Debian's pocketsphinx-testdata, through 8 kHz G.711 µ-law.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from ari_app.speech.asr import WhisperAsr
from ari_app.speech.audio import frames
from ari_app.speech.cache import CachedTts
from ari_app.speech.errors import SpeechEngineError
from ari_app.speech.evaluation import corpus_wer, peak_dbfs, pocketsphinx_clips
from ari_app.speech.tts import ClauseTts
from ari_app.speech.tts_engines import FliteTts, HibariTts, PiperTts
from ari_app.speech.vad import DtmfGuard, SileroVad, Vad, WebRtcVad

TEXTS = {
    "short": "Thank you for calling.",
    "medium": "Your balance is $42.50, and your next payment is due on 11/21/2026.",
    "long": (
        "I can help you with billing, orders, deliveries, returns or technical support, and if you "
        "would rather speak to a person at any time, just say agent and I will transfer you to the "
        "next available member of our team."
    ),
}


def bench_vad(pcm: bytes) -> None:
    print("\nVAD (20 ms frames)")
    print(f"{'engine':<22} {'µs/frame':>9}")
    vads: list[Vad] = [SileroVad(), DtmfGuard(SileroVad()), WebRtcVad(1), DtmfGuard(WebRtcVad(1))]
    fr = frames(pcm)
    for vad in vads:
        t = time.perf_counter()
        for f in fr:
            vad.speech_probability(f)
        print(f"{vad.name:<22} {(time.perf_counter() - t) / len(fr) * 1e6:>9.1f}")


def bench_asr(models: list[str]) -> None:
    clips = pocketsphinx_clips()
    print(f"\nASR ({len(clips)} human clips, 8 kHz µ-law)")
    print(f"{'model':<16} {'load s':>7} {'s/utt':>7} {'RTF':>6} {'WER':>6}")
    for model in models:
        t = time.perf_counter()
        try:
            asr = WhisperAsr(model, cache_dir=Path(tempfile.gettempdir()) / "ari-app-bench", threads=2)
        except SpeechEngineError as e:
            print(f"{model:<16} unavailable: {e}")
            continue
        load = time.perf_counter() - t
        times, pairs, audio_s = [], [], 0.0
        for clip in clips:
            t = time.perf_counter()
            tr = asr.transcribe_sync(clip.pcm8k)
            times.append(time.perf_counter() - t)
            pairs.append((clip.text, tr.text))
            audio_s += tr.duration_ms / 1000
        rtf = sum(times) / audio_s
        wer = corpus_wer(pairs)
        print(f"{model:<16} {load:>7.2f} {statistics.mean(times):>7.2f} {rtf:>6.2f} {wer:>6.3f}")


async def first_chunk_ms(tts: ClauseTts | CachedTts, text: str) -> tuple[float, float, bytes]:
    t = time.perf_counter()
    first = None
    chunks = []
    async for chunk in tts.synthesize(text):
        if first is None:
            first = time.perf_counter() - t
        chunks.append(chunk)
    return (first or 0) * 1000, (time.perf_counter() - t) * 1000, b"".join(chunks)


async def bench_tts(engines: list[str]) -> None:
    print("\nTTS: first audio / total ms (median of 3); peak dBFS; cache hit ms")
    print(f"{'engine':<8} {'load s':>7} " + " ".join(f"{k:>14}" for k in TEXTS) + f" {'peak':>6} {'hit':>6}")
    factories = {"hibari": HibariTts, "piper": PiperTts, "flite": FliteTts}
    for name in engines:
        t = time.perf_counter()
        try:
            tts = factories[name]()
        except SpeechEngineError as e:
            print(f"{name:<8} unavailable: {e}")
            continue
        load = time.perf_counter() - t
        cells, peaks = [], []
        for text in TEXTS.values():
            runs = [await first_chunk_ms(tts, text) for _ in range(3)]
            first = statistics.median(r[0] for r in runs)
            total = statistics.median(r[1] for r in runs)
            peaks.append(peak_dbfs(runs[0][2]))
            cells.append(f"{first:>6.0f} /{total:>6.0f}")
        with tempfile.TemporaryDirectory() as tmp:
            cached = CachedTts(tts, Path(tmp))
            await first_chunk_ms(cached, TEXTS["medium"])
            hits = [(await first_chunk_ms(cached, TEXTS["medium"]))[1] for _ in range(20)]
        print(
            f"{name:<8} {load:>7.2f} "
            + " ".join(cells)
            + f" {max(peaks):>6.1f} {statistics.median(hits):>6.2f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--asr", default="tiny.en,base", help="Whisper models, comma-separated")
    ap.add_argument("--tts", default="hibari,piper,flite", help="TTS engines, comma-separated")
    args = ap.parse_args()
    bench_vad(b"".join(c.pcm8k for c in pocketsphinx_clips()))
    bench_asr([m for m in args.asr.split(",") if m])
    asyncio.run(bench_tts([e for e in args.tts.split(",") if e]))


if __name__ == "__main__":
    main()
