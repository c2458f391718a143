"""8 kHz <-> 16 kHz (or any rate pair) int16 PCM resampling with libsoxr.

The telephone side is 8 kHz; speech models want 16 kHz and TTS voices produce 16-24 kHz.
`Resampler` keeps the filter state between 20 ms chunks, so a stream resampled chunk by chunk
has no clicks at the chunk borders (a fresh one-shot resample per chunk would).
"""

from __future__ import annotations

import numpy as np
import soxr

_PCM = np.dtype("<i2")


def _as_samples(pcm: bytes) -> np.ndarray:
    if len(pcm) % 2:
        raise ValueError(f"PCM buffer of {len(pcm)} bytes is not whole 16-bit samples")
    return np.frombuffer(pcm, dtype=_PCM)


def _check_rates(in_rate: int, out_rate: int) -> None:
    for label, rate in (("in_rate", in_rate), ("out_rate", out_rate)):
        if not isinstance(rate, int) or rate <= 0:
            raise ValueError(f"{label}={rate!r}: must be a positive integer sample rate in Hz")


def resample(pcm: bytes, in_rate: int, out_rate: int, *, quality: str = "HQ") -> bytes:
    """Resample a whole int16 little-endian mono buffer in one go."""
    _check_rates(in_rate, out_rate)
    samples = _as_samples(pcm)
    if in_rate == out_rate or samples.size == 0:
        return bytes(pcm)
    return soxr.resample(samples, in_rate, out_rate, quality=quality).astype(_PCM).tobytes()


class Resampler:
    """Streaming resampler for int16 little-endian mono PCM.

    Output per chunk is not exactly ``len * out/in`` (the filter has a few ms of delay); the
    total over the stream is, once `flush()` has been called at the end.
    """

    def __init__(self, in_rate: int, out_rate: int, *, quality: str = "HQ") -> None:
        _check_rates(in_rate, out_rate)
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._quality = quality
        self._stream: soxr.ResampleStream | None = None
        self._odd = b""  # a dangling byte if a caller hands us half a sample
        self._reset()

    def _reset(self) -> None:
        self._odd = b""
        self._stream = (
            None
            if self.in_rate == self.out_rate
            else soxr.ResampleStream(self.in_rate, self.out_rate, 1, dtype="int16", quality=self._quality)
        )

    def process(self, pcm: bytes) -> bytes:
        """Feed one chunk; returns whatever resampled audio is ready (may be shorter or empty)."""
        data = self._odd + pcm
        cut = len(data) - len(data) % 2
        self._odd = data[cut:]
        if self._stream is None:
            return data[:cut]
        if not cut:
            return b""
        return self._stream.resample_chunk(np.frombuffer(data[:cut], dtype=_PCM)).astype(_PCM).tobytes()

    def flush(self) -> bytes:
        """End of stream: return the filter's tail and make the resampler ready for a new stream."""
        if self._stream is None:
            self._odd = b""
            return b""
        tail = self._stream.resample_chunk(np.zeros(0, dtype=_PCM), last=True).astype(_PCM).tobytes()
        self._reset()
        return tail
