"""PcmStream: server audio in arbitrary pieces -> 8 kHz int16 PCM (no models needed)."""

from __future__ import annotations

import numpy as np
import pytest

from ari_app.speech.audio import float_to_pcm, pcm_to_float, wav_bytes
from ari_app.speech.pcm_stream import PcmStream


def tone(rate: int, seconds: float = 1.0, hz: float = 440.0) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    return float_to_pcm(0.5 * np.sin(2 * np.pi * hz * t))


def feed_in_pieces(stream: PcmStream, data: bytes, piece: int) -> bytes:
    out = b"".join(stream.feed(data[i : i + piece]) for i in range(0, len(data), piece))
    return out + stream.flush()


@pytest.mark.parametrize("piece", [1, 7, 1000, 100_000])
def test_24k_pcm_becomes_8k_of_the_same_length_and_pitch(piece: int) -> None:
    out = feed_in_pieces(PcmStream("pcm", 24000), tone(24000), piece)
    samples = pcm_to_float(out)
    assert abs(samples.size - 8000) <= 2  # one second, nothing lost at the piece edges
    spectrum = np.abs(np.fft.rfft(samples[1000:7000]))
    assert abs(np.argmax(spectrum) * 8000 / 6000 - 440) < 3


def test_streamed_wav_with_unknown_length_and_extra_chunk() -> None:
    wav = wav_bytes(tone(16000, 0.5), 16000)
    # A streaming server's header: sizes 0xFFFFFFFF, and a LIST chunk before the data.
    fmt_end = 36
    wav = (b"RIFF\xff\xff\xff\xff" + wav[8:fmt_end] + b"LIST\x05\x00\x00\x00abcde\x00"
           + b"data\xff\xff\xff\xff" + wav[44:])  # fmt: skip
    stream = PcmStream("wav")
    out = feed_in_pieces(stream, wav, 3)
    assert stream.rate == 16000
    assert abs(len(out) // 2 - 4000) <= 2


def test_8k_wav_passes_through_unchanged() -> None:
    pcm = tone(8000, 0.3)
    assert feed_in_pieces(PcmStream("wav"), wav_bytes(pcm), 333) == pcm


def test_stereo_wav_keeps_the_first_channel() -> None:
    mono = np.frombuffer(tone(8000, 0.1), dtype="<i2")
    stereo = np.stack([mono, np.zeros_like(mono)], axis=1).astype("<i2").tobytes()
    wav = bytearray(wav_bytes(stereo))
    wav[22:24] = (2).to_bytes(2, "little")  # channels
    wav[32:34] = (4).to_bytes(2, "little")  # block align
    assert feed_in_pieces(PcmStream("wav"), bytes(wav), 50) == mono.tobytes()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"error": "model exploded"}', "not a WAV"),
        (wav_bytes(b"")[:30], "ended inside its WAV header"),
        (b"RIFF\0\0\0\0WAVEfmt \x10\0\0\0" + bytes([3, 0, 1, 0]) + b"\x40\x1f\0\0" * 2 + b"\x04\0\x20\0",
         "16-bit PCM"),
    ],
)  # fmt: skip
def test_audio_we_cannot_play_is_a_value_error(data: bytes, message: str) -> None:
    stream = PcmStream("wav")
    with pytest.raises(ValueError, match=message):
        stream.feed(data)
        stream.flush()
