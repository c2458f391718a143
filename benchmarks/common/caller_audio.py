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


# What the live turn taker hands the ASR for a TTS caller's phrase on the wire (turns dumped in
# task-success run 16, sample for sample): 100 ms of the line's silence, the phrase as rendered,
# and silence up to 300 ms after its last sound (the early end of turn), to the end of a 20 ms
# frame. Whisper decodes the phrase differently so cut ("Ten a.m.": "Spin it in." bare, "fill in,
# fill in, ..." as a turn).
TURN_LEAD_MS = 100
TURN_TRAIL_MS = 300


def as_turn(pcm: bytes) -> bytes:
    """``pcm`` (8 kHz 16-bit) as the turn taker cuts it: silence before, and after its last sound."""
    samples = np.frombuffer(pcm, dtype="<i2")
    sounding = np.flatnonzero(samples)
    tail = len(samples) - 1 - int(sounding[-1]) if sounding.size else len(samples)
    n = TURN_LEAD_MS * 8 + len(samples) + max(0, TURN_TRAIL_MS * 8 - tail)
    n = -(-n // 160) * 160  # the turn ends on a 20 ms frame
    return bytes(16 * TURN_LEAD_MS) + pcm + bytes(2 * (n - TURN_LEAD_MS * 8 - len(samples)))
