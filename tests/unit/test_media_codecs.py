from __future__ import annotations

import warnings

import numpy as np
import pytest

from ari_app.media.codecs import get_codec

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    audioop = pytest.importorskip("audioop")  # the stdlib reference (audioop-lts on 3.13+)

EVERY_INT16 = np.arange(-32768, 32768, dtype="<i2").tobytes()
EVERY_BYTE = bytes(range(256))


@pytest.mark.parametrize(
    ("name", "lin2x", "x2lin"), [("ulaw", "lin2ulaw", "ulaw2lin"), ("alaw", "lin2alaw", "alaw2lin")]
)
def test_g711_is_bit_exact_with_audioop(name: str, lin2x: str, x2lin: str) -> None:
    codec = get_codec(name)  # type: ignore[arg-type]
    assert codec.encode(EVERY_INT16) == getattr(audioop, lin2x)(EVERY_INT16, 2)
    assert codec.decode(EVERY_BYTE) == getattr(audioop, x2lin)(EVERY_BYTE, 2)


@pytest.mark.parametrize("name", ["ulaw", "alaw"])
def test_g711_silence_byte_decodes_to_near_zero(name: str) -> None:
    codec = get_codec(name)  # type: ignore[arg-type]
    assert abs(np.frombuffer(codec.decode(bytes([codec.silence_byte])), "<i2")[0]) <= 8


def test_slin_is_big_endian_on_the_wire() -> None:
    codec = get_codec("slin")
    pcm = np.array([1, -2, 0x1234], dtype="<i2").tobytes()
    wire = codec.encode(pcm)
    assert wire == np.array([1, -2, 0x1234], dtype=">i2").tobytes()
    assert codec.decode(wire) == pcm


def test_registry_facts() -> None:
    assert [(c.payload_type, c.bytes_per_frame) for c in map(get_codec, ["ulaw", "alaw", "slin"])] == [
        (0, 160),
        (8, 160),
        (10, 320),
    ]
    with pytest.raises(ValueError, match="unknown media format 'opus': expected one of ulaw, alaw, slin"):
        get_codec("opus")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["ulaw", "alaw", "slin"])
def test_half_samples_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="3 bytes is not whole 16-bit samples"):
        get_codec(name).encode(b"\x00\x01\x02")  # type: ignore[arg-type]
