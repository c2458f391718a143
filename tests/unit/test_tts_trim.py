"""speech: the engines' own leading silence is trimmed on energy, so a stray sample does not keep it.

The shape is the one hibari produced on a fresh machine (onnxruntime 1.32): ~300 ms of near
silence with one faint sample (-43 dBFS) a few tens of ms before the first word. Judged per
sample, that sample started the prompt and ~55 ms of silence reached the caller.
"""

from __future__ import annotations

import numpy as np

from ari_app.media.constants import SAMPLE_RATE
from ari_app.speech.audio import pcm_to_float, trim_leading_silence, trim_trailing_silence
from ari_app.speech.tts import ClauseTts, TtsIdentity

RATE = 24000


def engine_like_clause(click_before_ms: int = 25) -> np.ndarray:
    rng = np.random.default_rng(0)
    lead = rng.normal(0, 10 ** (-80 / 20), RATE * 300 // 1000).astype(np.float32)  # dither
    onset = lead.size
    lead[onset - RATE * click_before_ms // 1000] = 10 ** (-43 / 20)  # one stray sample
    t = np.arange(RATE * 400 // 1000) / RATE
    word = (0.3 * np.sin(2 * np.pi * 220 * t) * np.minimum(1, t / 0.01)).astype(np.float32)
    tail = rng.normal(0, 10 ** (-80 / 20), RATE * 200 // 1000).astype(np.float32)
    return np.concatenate([lead, word, tail])


class _Engine(ClauseTts):
    identity = TtsIdentity("fake", "0", "v", 1.0, None)
    gain_db = 6.0

    def render(self, clause: str) -> tuple[np.ndarray, int]:
        return engine_like_clause(), RATE


def test_sound_starts_within_50ms_despite_a_stray_sample() -> None:
    pcm = _Engine(normalize_text=False).render_clause("hello", 0)
    first_loud = np.flatnonzero(np.abs(pcm_to_float(pcm)) > 0.01)[0]
    assert first_loud < SAMPLE_RATE * 50 // 1000, f"{first_loud / 8:.0f} ms of leading silence"
    assert first_loud > SAMPLE_RATE * 15 // 1000, "a short lead-in is kept so the onset is not clipped"


def test_trim_keeps_the_lead_in_and_the_tail_gap() -> None:
    samples = engine_like_clause()
    ms = RATE // 1000
    removed = samples.size - trim_leading_silence(samples, RATE, keep_ms=30).size
    assert (300 - 30 - 6) * ms <= removed <= (300 - 30) * ms  # the window may open just before the word
    kept = trim_trailing_silence(samples, RATE, keep_ms=120).size
    assert (700 + 120 - 6) * ms <= kept <= (700 + 120 + 6) * ms  # the word ends at 700 ms


def test_all_silence_and_empty_input() -> None:
    quiet = np.zeros(RATE // 10, np.float32)
    assert trim_leading_silence(quiet, RATE).size == 0
    assert trim_trailing_silence(quiet, RATE).size == 0
    assert trim_leading_silence(np.zeros(0, np.float32), RATE).size == 0
    short = np.full(3, 0.5, np.float32)  # shorter than one window
    assert trim_leading_silence(short, RATE).size == 3
