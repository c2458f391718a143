"""The codecs an ExternalMedia RTP channel can carry, by their Asterisk format name.

Each converts between our internal audio (8 kHz mono int16 little-endian PCM) and RTP payload.
Payload types are the static ones Asterisk uses on chan_rtp: PCMU 0, PCMA 8, and 10 for slin
(checked against a real Asterisk 22 in tests/stack/test_media_echo.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

from ari_app.media.codecs.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from ari_app.media.codecs.linear import swap16
from ari_app.media.constants import FRAME_SAMPLES

CodecName = Literal["ulaw", "alaw", "slin"]


@dataclass(frozen=True, slots=True)
class Codec:
    name: CodecName
    payload_type: int
    bytes_per_sample: int  # on the wire
    _encode: Callable[[bytes], bytes]
    _decode: Callable[[bytes], bytes]
    silence_byte: int  # one wire byte value that decodes to (near) zero; slin is all zero bytes

    @property
    def bytes_per_frame(self) -> int:
        """Wire payload bytes in one 20 ms frame (160 for G.711, 320 for slin)."""
        return FRAME_SAMPLES * self.bytes_per_sample

    def encode(self, pcm: bytes) -> bytes:
        """8 kHz int16 little-endian PCM -> RTP payload."""
        return self._encode(pcm)

    def decode(self, payload: bytes) -> bytes:
        """RTP payload -> 8 kHz int16 little-endian PCM. Raises ValueError on a malformed payload."""
        return self._decode(payload)


_CODECS: dict[str, Codec] = {
    "ulaw": Codec("ulaw", 0, 1, ulaw_encode, ulaw_decode, 0xFF),
    "alaw": Codec("alaw", 8, 1, alaw_encode, alaw_decode, 0xD5),
    "slin": Codec("slin", 10, 2, swap16, swap16, 0x00),
}


def get_codec(name: CodecName) -> Codec:
    """The codec for an Asterisk ExternalMedia ``format``; ValueError names the known ones."""
    try:
        return _CODECS[name]
    except KeyError:
        raise ValueError(
            f"unknown media format {name!r}: expected one of {', '.join(get_args(CodecName))}"
        ) from None


__all__ = [
    "Codec",
    "CodecName",
    "get_codec",
]
