"""speech: audio arriving from a TTS server in pieces -> 8 kHz int16 PCM, piece by piece.

Servers send raw int16 LE at their own rate (OpenAI's "pcm" is 24 kHz) or a WAV file whose
header says the rate; a streamed WAV often has an unknown (0 or 0xFFFFFFFF) data size, so sizes
are ignored and everything after the ``data`` chunk header is audio. Resampling is streaming
(soxr keeps state between pieces), so a clause's first audio is not held back for its end.
"""

from __future__ import annotations

import struct
from typing import Literal

import numpy as np
import soxr

from ari_app.media.constants import SAMPLE_RATE
from ari_app.speech.audio import float_to_pcm

MAX_WAV_HEADER = 64 * 1024  # past this without a data chunk it is not a WAV we can play
_WAVE_FORMAT_PCM, _WAVE_FORMAT_EXTENSIBLE = 1, 0xFFFE


class PcmStream:
    """``feed`` server bytes, get telephone PCM back (maybe b""); ``flush`` at the end.
    Raises ValueError on a WAV we cannot play (not 16-bit PCM, no data chunk)."""

    def __init__(self, fmt: Literal["pcm", "wav"], rate: int = SAMPLE_RATE) -> None:
        self._header_done = fmt == "pcm"
        self.rate = rate
        self.channels = 1
        self._buf = b""  # an unparsed WAV header, or a partial sample frame
        self._resampler: soxr.ResampleStream | None = None

    def feed(self, data: bytes) -> bytes:
        self._buf += data
        if not self._header_done and not self._parse_header():
            return b""
        frame = 2 * self.channels
        usable = len(self._buf) - len(self._buf) % frame
        block, self._buf = self._buf[:usable], self._buf[usable:]
        return self._convert(block, last=False) if block else b""

    def flush(self) -> bytes:
        if not self._header_done:
            if self._buf:
                raise ValueError("the audio ended inside its WAV header")
            return b""
        return self._convert(b"", last=True)

    def _convert(self, block: bytes, last: bool) -> bytes:
        samples = np.frombuffer(block, dtype="<i2")
        if self.channels > 1:
            samples = samples[:: self.channels]  # first channel, as audio.read_wav does
        if self.rate == SAMPLE_RATE:
            return samples.astype("<i2").tobytes()
        if self._resampler is None:
            self._resampler = soxr.ResampleStream(self.rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
        out = self._resampler.resample_chunk(samples.astype(np.float32) / 32768.0, last=last)
        return float_to_pcm(out) if out.size else b""

    def _parse_header(self) -> bool:
        """True once the data chunk starts (its audio left in ``_buf``); False: need more bytes."""
        buf = self._buf
        if len(buf) < 12:
            return False
        if buf[:4] != b"RIFF" or buf[8:12] != b"WAVE":
            raise ValueError(f"not a WAV file (starts with {buf[:12]!r})")
        pos, fmt_seen = 12, False
        while len(buf) >= pos + 8:
            chunk_id, size = buf[pos : pos + 4], struct.unpack("<I", buf[pos + 4 : pos + 8])[0]
            if chunk_id == b"data":
                if not fmt_seen:
                    raise ValueError("WAV data chunk before its fmt chunk")
                self._buf, self._header_done = buf[pos + 8 :], True
                return True
            end = pos + 8 + size + size % 2  # chunks are padded to an even length
            if len(buf) < end:
                break
            if chunk_id == b"fmt ":
                self._read_fmt(buf[pos + 8 : pos + 8 + size])
                fmt_seen = True
            pos = end
        if len(buf) > MAX_WAV_HEADER:
            raise ValueError(f"no WAV data chunk in the first {MAX_WAV_HEADER} bytes")
        return False

    def _read_fmt(self, fmt: bytes) -> None:
        if len(fmt) < 16:
            raise ValueError("WAV fmt chunk too short")
        tag, channels, rate, _byte_rate, _align, bits = struct.unpack("<HHIIHH", fmt[:16])
        if tag not in (_WAVE_FORMAT_PCM, _WAVE_FORMAT_EXTENSIBLE) or bits != 16 or channels < 1:
            raise ValueError(f"WAV must be 16-bit PCM, got format {tag}, {bits}-bit, {channels} channels")
        if not 4000 <= rate <= 192_000:
            raise ValueError(f"WAV sample rate {rate} Hz is not plausible")
        self.channels, self.rate = channels, rate
