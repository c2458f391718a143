"""Benchmarks: a caller's phrase as it reaches the agent (TTS voice, optional noise, 8 kHz µ-law)."""

from __future__ import annotations

import numpy as np

from ari_app.speech.evaluation import telephone_channel
from ari_app.testcaller import audio


def on_the_line(text: str, engine: str, voice: str | None, snr_db: float | None = None) -> bytes:
    """``text`` spoken by ``engine``/``voice``; with ``snr_db``, a 0.3 s pause after it and white
    noise at that SNR (seeded by the text, so a rerun hears the same noise)."""
    pcm = audio.synthesize(text, engine, voice=voice)
    if snr_db is not None:
        pcm = audio.add_noise(audio.with_pauses(pcm, 0.3), snr_db, seed=len(text))
    return telephone_channel(np.asarray(pcm, dtype="<i2").tobytes())
