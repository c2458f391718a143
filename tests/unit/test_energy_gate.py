"""The VAD's energy gate: a silent line skips the model, the model still hears pauses' onsets."""

from __future__ import annotations

import numpy as np

from ari_app.media.constants import FRAME_SAMPLES
from ari_app.speech.vad import EnergyGate


class CountingVad:
    name = "counting"

    def __init__(self) -> None:
        self.frames = 0

    def speech_probability(self, frame: bytes) -> float:
        self.frames += 1
        return 0.9

    def reset(self) -> None:
        pass


def _frame(dbfs: float | None) -> bytes:
    if dbfs is None:
        return bytes(FRAME_SAMPLES * 2)
    t = np.arange(FRAME_SAMPLES) / 8000
    return (np.sin(2 * np.pi * 300 * t) * 32768 * 10 ** (dbfs / 20) * np.sqrt(2)).astype("<i2").tobytes()


def test_silence_skips_the_model_after_the_hold_and_speech_always_reaches_it() -> None:
    inner = CountingVad()
    gate = EnergyGate(inner, gate_dbfs=-60, hold_frames=5)
    assert gate.speech_probability(_frame(-30)) == 0.9  # speech
    quiet = [gate.speech_probability(_frame(None)) for _ in range(20)]
    assert quiet[:5] == [0.9] * 5  # the model hears the start of every pause (its own decay)
    assert quiet[5:] == [0.0] * 15 and gate.skipped == 15
    assert gate.speech_probability(_frame(-70)) == 0.0  # comfort noise is below the gate
    assert gate.speech_probability(_frame(-45)) == 0.9  # a quiet talker is well above it
    assert inner.frames == 1 + 5 + 1
