"""PCM helpers shared by the engines. The telephone convention everywhere: 8 kHz mono int16 LE."""

from __future__ import annotations

import io
import wave

import numpy as np
import soxr

from ari_app.media.constants import FRAME_BYTES, SAMPLE_RATE

# Telephone playback level: peaks at about -3 dBFS leave headroom for the G.711 encoder.
PEAK_CEILING = 10 ** (-3 / 20)


def pcm_ms(pcm: bytes, rate: int = SAMPLE_RATE) -> int:
    """Duration of int16 mono PCM in milliseconds."""
    return len(pcm) // 2 * 1000 // rate


def pcm_to_float(pcm: bytes) -> np.ndarray:
    """int16 LE bytes -> float32 in [-1, 1]. An odd trailing byte is dropped."""
    usable = len(pcm) - len(pcm) % 2
    return np.frombuffer(pcm[:usable], dtype="<i2").astype(np.float32) / 32768.0


def float_to_pcm(samples: np.ndarray) -> bytes:
    """float in [-1, 1] -> int16 LE bytes (clipped, never wrapped)."""
    clipped = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 32767 / 32768)
    return (np.round(clipped * 32768.0)).astype("<i2").tobytes()


def resample(samples: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Band-limited resampling (soxr, high quality)."""
    if rate_in == rate_out or samples.size == 0:
        return np.asarray(samples, dtype=np.float32)
    return soxr.resample(np.asarray(samples, dtype=np.float32), rate_in, rate_out, quality="HQ")


def apply_gain_db(samples: np.ndarray, gain_db: float) -> np.ndarray:
    return samples * np.float32(10 ** (gain_db / 20))


def limit_peak(samples: np.ndarray, ceiling: float = PEAK_CEILING) -> np.ndarray:
    """Scale down (never up) so the peak does not exceed ``ceiling``: no clipping on loud engines."""
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    if peak > ceiling:
        return samples * np.float32(ceiling / peak)
    return samples


# Sound is judged on the energy of a short window, not on single samples: an engine's faint
# click or dither sample before the first word (seen with some onnxruntime builds) must not
# count as the start of speech, or its leading silence reaches the caller as latency.
TRIM_WINDOW_MS = 5


def _loud_windows(samples: np.ndarray, rate: int, threshold_db: float) -> np.ndarray:
    """Start indices of the ``TRIM_WINDOW_MS`` windows whose RMS is above ``threshold_db`` (dBFS)."""
    width = max(1, rate * TRIM_WINDOW_MS // 1000)
    if samples.size < width:
        width = samples.size
    power = np.concatenate(([0.0], np.cumsum(np.square(samples, dtype=np.float64))))
    mean_power = (power[width:] - power[:-width]) / width
    return np.flatnonzero(mean_power > 10 ** (threshold_db / 10))


def trim_leading_silence(
    samples: np.ndarray, rate: int, threshold_db: float = -45.0, keep_ms: int = 30
) -> np.ndarray:
    """Drop silence before the first window louder than ``threshold_db``, keeping ``keep_ms`` of lead-in."""
    if samples.size == 0:
        return samples
    loud = _loud_windows(samples, rate, threshold_db)
    if loud.size == 0:
        return samples[:0]
    start = max(0, int(loud[0]) - rate * keep_ms // 1000)
    return samples[start:]


def trim_trailing_silence(
    samples: np.ndarray, rate: int, threshold_db: float = -45.0, keep_ms: int = 120
) -> np.ndarray:
    """Drop silence after the last loud window, keeping ``keep_ms`` as a natural gap between clauses."""
    if samples.size == 0:
        return samples
    loud = _loud_windows(samples, rate, threshold_db)
    if loud.size == 0:
        return samples[:0]
    width = min(samples.size, max(1, rate * TRIM_WINDOW_MS // 1000))
    end = min(samples.size, int(loud[-1]) + width + rate * keep_ms // 1000)
    return samples[:end]


def to_telephone(samples: np.ndarray, rate: int, gain_db: float = 0.0) -> bytes:
    """Engine float audio at any rate -> 8 kHz int16 PCM at telephone level (peak <= -3 dBFS)."""
    out = resample(apply_gain_db(np.asarray(samples, dtype=np.float32), gain_db), rate, SAMPLE_RATE)
    return float_to_pcm(limit_peak(out))


def wav_bytes(pcm: bytes, rate: int = SAMPLE_RATE) -> bytes:
    """Wrap int16 mono PCM in a WAV container (for HTTP uploads and debugging)."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return buf.getvalue()


def read_wav(data: bytes) -> tuple[np.ndarray, int]:
    """WAV bytes (16-bit PCM, mono or first channel) -> float32 samples and sample rate."""
    with wave.open(io.BytesIO(data), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"WAV must be 16-bit PCM, got {8 * w.getsampwidth()}-bit")
        channels, rate = w.getnchannels(), w.getframerate()
        samples = pcm_to_float(w.readframes(w.getnframes()))
    return samples[::channels], rate


def frames(pcm: bytes, frame_bytes: int = FRAME_BYTES) -> list[bytes]:
    """Split PCM into whole 20 ms frames (a partial last frame is zero-padded)."""
    out = [pcm[i : i + frame_bytes] for i in range(0, len(pcm), frame_bytes)]
    if out and len(out[-1]) < frame_bytes:
        out[-1] = out[-1] + b"\0" * (frame_bytes - len(out[-1]))
    return out
