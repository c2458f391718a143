"""Asterisk ``slin``: 8 kHz signed 16-bit linear PCM, big-endian (network order) on the wire.

Our side is little-endian, so encode and decode are the same byte swap.
"""

from __future__ import annotations

import numpy as np


def swap16(data: bytes) -> bytes:
    """Swap the bytes of every 16-bit sample (little-endian <-> big-endian)."""
    if len(data) % 2:
        raise ValueError(f"PCM buffer of {len(data)} bytes is not whole 16-bit samples")
    return np.frombuffer(data, dtype="<i2").astype(">i2").tobytes()
