"""ITU-T G.711 µ-law and A-law, bit-exact with the classic Sun reference (and so with audioop).

Encoding is one numpy table lookup over all 65536 int16 values; decoding is a 256-entry lookup.
The tables are computed once at import with the reference algorithm, vectorised.
"""

from __future__ import annotations

import numpy as np

_PCM = np.dtype("<i2")

# Segment end points of the reference implementation (14-bit µ-law, 13-bit A-law magnitudes).
_SEG_UEND = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])
_SEG_AEND = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF])
_ULAW_BIAS = 0x84
_ULAW_CLIP = 8159


def _build_ulaw_encode() -> np.ndarray:
    pcm = np.arange(-32768, 32768, dtype=np.int32) >> 2  # 14-bit, arithmetic shift like the C code
    mask = np.where(pcm < 0, 0x7F, 0xFF)
    mag = np.minimum(np.abs(pcm), _ULAW_CLIP) + (_ULAW_BIAS >> 2)
    seg = np.searchsorted(_SEG_UEND, mag, side="left")
    uval = (np.minimum(seg, 7) << 4) | ((mag >> (np.minimum(seg, 7) + 1)) & 0xF)
    uval = np.where(seg >= 8, 0x7F, uval)
    return (uval ^ mask).astype(np.uint8)


def _build_alaw_encode() -> np.ndarray:
    pcm = np.arange(-32768, 32768, dtype=np.int32) >> 3  # 13-bit
    mask = np.where(pcm >= 0, 0xD5, 0x55)
    mag = np.where(pcm >= 0, pcm, -pcm - 1)
    seg = np.searchsorted(_SEG_AEND, mag, side="left")
    segc = np.minimum(seg, 7)
    quant = np.where(segc < 2, mag >> 1, mag >> segc) & 0xF
    aval = np.where(seg >= 8, 0x7F, (segc << 4) | quant)
    return (aval ^ mask).astype(np.uint8)


def _build_ulaw_decode() -> np.ndarray:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((u & 0x0F) << 3) + _ULAW_BIAS) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, _ULAW_BIAS - t, t - _ULAW_BIAS).astype(_PCM)


def _build_alaw_decode() -> np.ndarray:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    seg = (a & 0x70) >> 4
    t = (a & 0x0F) << 4
    t = np.where(seg == 0, t + 8, (t + 0x108) << np.maximum(seg - 1, 0))
    return np.where(a & 0x80, t, -t).astype(_PCM)


# Encode tables are indexed by the int16 value reinterpreted as uint16 (two's complement order).
_ULAW_ENC = np.roll(_build_ulaw_encode(), -32768)
_ALAW_ENC = np.roll(_build_alaw_encode(), -32768)
_ULAW_DEC = _build_ulaw_decode()
_ALAW_DEC = _build_alaw_decode()


def _samples(pcm: bytes) -> np.ndarray:
    if len(pcm) % 2:
        raise ValueError(f"PCM buffer of {len(pcm)} bytes is not whole 16-bit samples")
    return np.frombuffer(pcm, dtype="<u2")


def ulaw_encode(pcm: bytes) -> bytes:
    """int16 little-endian PCM -> µ-law bytes (one byte per sample)."""
    return _ULAW_ENC[_samples(pcm)].tobytes()


def alaw_encode(pcm: bytes) -> bytes:
    """int16 little-endian PCM -> A-law bytes."""
    return _ALAW_ENC[_samples(pcm)].tobytes()


def ulaw_decode(payload: bytes) -> bytes:
    """µ-law bytes -> int16 little-endian PCM."""
    return _ULAW_DEC[np.frombuffer(payload, dtype=np.uint8)].tobytes()


def alaw_decode(payload: bytes) -> bytes:
    """A-law bytes -> int16 little-endian PCM."""
    return _ALAW_DEC[np.frombuffer(payload, dtype=np.uint8)].tobytes()
