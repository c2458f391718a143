from __future__ import annotations

import numpy as np
import pytest

from ari_app.media.resample import Resampler, resample


def tone(freq: float, rate: int, seconds: float = 1.0) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    return (10000 * np.sin(2 * np.pi * freq * t)).astype("<i2").tobytes()


def peak_hz(pcm: bytes, rate: int) -> float:
    x = np.frombuffer(pcm, "<i2").astype(float)
    return float(np.fft.rfftfreq(x.size, 1 / rate)[np.argmax(np.abs(np.fft.rfft(x)))])


@pytest.mark.parametrize(("src", "dst"), [(8000, 16000), (16000, 8000), (22050, 8000)])
def test_one_shot_keeps_length_and_pitch(src: int, dst: int) -> None:
    out = resample(tone(1000, src), src, dst)
    assert len(out) == 2 * dst
    assert abs(peak_hz(out, dst) - 1000) <= 2


def test_streaming_in_20ms_chunks_matches_one_shot() -> None:
    pcm = tone(440, 8000)
    r = Resampler(8000, 16000)
    chunks = [r.process(pcm[i : i + 320]) for i in range(0, len(pcm), 320)]
    streamed = b"".join(chunks) + r.flush()
    assert len(streamed) == 32000
    a = np.frombuffer(streamed, "<i2").astype(float)
    b = np.frombuffer(resample(pcm, 8000, 16000), "<i2").astype(float)
    # Same filter: the streams agree to within a couple of LSBs (no clicks at chunk borders).
    assert np.max(np.abs(a[200:-200] - b[200:-200])) <= 4
    # flush() readies the resampler for a new stream (soxr dithers its int16 output: a few LSB).
    again = b"".join(r.process(pcm[i : i + 320]) for i in range(0, len(pcm), 320)) + r.flush()
    assert len(again) == len(streamed)
    assert np.max(np.abs(np.frombuffer(again, "<i2").astype(int) - a.astype(int))) <= 3


def test_odd_chunks_are_joined_and_equal_rates_pass_through() -> None:
    r = Resampler(8000, 8000)
    assert r.process(b"\x01") == b"" and r.process(b"\x02\x03") == b"\x01\x02" and r.flush() == b""
    assert resample(b"\x01\x02", 8000, 8000) == b"\x01\x02"


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="in_rate=0"):
        Resampler(0, 8000)
    with pytest.raises(ValueError, match="3 bytes is not whole"):
        resample(b"abc", 8000, 16000)
