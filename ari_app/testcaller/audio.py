"""Test-call audio: load a WAV (any rate, any channel count) as 8 kHz mono int16, synthesise a
sentence with Debian's ``flite`` or ``espeak-ng``, add noise at a given SNR, build pauses."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np
import soxr

RATE = 8000
TTS_ENGINES = ("flite", "espeak-ng")


class AudioError(Exception):
    """Audio could not be loaded or made; the message names the file or tool and what is wrong."""


def load_wav(path: str | Path, rate: int = RATE) -> np.ndarray:
    """A PCM WAV file as mono int16 at ``rate`` (channels averaged, resampled with soxr)."""
    p = Path(path)
    try:
        with wave.open(str(p), "rb") as w:
            width, channels, src_rate = w.getsampwidth(), w.getnchannels(), w.getframerate()
            raw = w.readframes(w.getnframes())
    except FileNotFoundError:
        raise AudioError(f"audio file {p} does not exist") from None
    except (wave.Error, EOFError) as e:
        raise AudioError(
            f"{p} is not a PCM WAV file we can read ({e}); convert it with `sox {p} -b 16 out.wav`"
        ) from None
    if width == 1:
        samples = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128) / 128
    elif width == 2:
        samples = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768
    elif width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        samples = np.where(v & 0x800000, v - 0x1000000, v).astype(np.float32) / 8388608
    elif width == 4:
        samples = np.frombuffer(raw, dtype="<i4").astype(np.float32) / 2147483648
    else:
        raise AudioError(f"{p}: {8 * width}-bit samples are not supported")
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    return to_int16(resample(samples, src_rate, rate))


def resample(samples: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    if src_rate == dst_rate or samples.size == 0:
        return samples
    return soxr.resample(samples.astype(np.float32), src_rate, dst_rate, quality="HQ")


def to_int16(samples: np.ndarray) -> np.ndarray:
    """float in [-1, 1] (or int16 already) -> int16 with clipping."""
    if samples.dtype == np.int16:
        return samples
    return np.clip(np.round(samples * 32767), -32768, 32767).astype(np.int16)


def write_wav(path: str | Path, pcm: np.ndarray, rate: int = RATE) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.asarray(pcm, dtype="<i2").tobytes())


def synthesize(text: str, engine: str = "auto", rate: int = RATE, voice: str | None = None) -> np.ndarray:
    """Speak ``text`` with flite or espeak-ng (``auto``: the first installed) as mono int16."""
    if not text.strip():
        raise AudioError("nothing to synthesise: the sentence is empty")
    engines = TTS_ENGINES if engine == "auto" else (engine,)
    if engine not in (*TTS_ENGINES, "auto"):
        raise AudioError(f"TTS engine {engine!r} is not one of {', '.join(TTS_ENGINES)} or auto")
    exe = next((shutil.which(e) for e in engines if shutil.which(e)), None)
    if exe is None:
        raise AudioError(
            f"no speech synthesiser found ({' or '.join(engines)}); "
            "install it with `apt-get install flite espeak-ng`"
        )
    with tempfile.TemporaryDirectory(prefix="ari-app-tts-") as tmp:
        out = Path(tmp) / "speech.wav"
        if Path(exe).name == "flite":
            cmd = [exe, "-t", text, "-o", str(out)] + (["-voice", voice] if voice else [])
        else:
            cmd = [exe, "-w", str(out)] + (["-v", voice] if voice else []) + ["--", text]
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=60, check=False)
        except subprocess.TimeoutExpired:
            raise AudioError(f"{Path(exe).name} took longer than 60 s to speak {text[:40]!r}") from None
        if proc.returncode != 0 or not out.exists():
            err = proc.stderr.decode(errors="replace").strip()[:300]
            raise AudioError(f"{Path(exe).name} failed (exit {proc.returncode}): {err}")
        return load_wav(out, rate)


def silence(seconds: float, rate: int = RATE) -> np.ndarray:
    if seconds < 0:
        raise AudioError(f"a pause cannot be negative ({seconds} s)")
    return np.zeros(round(seconds * rate), dtype=np.int16)


def with_pauses(*parts: np.ndarray | float, rate: int = RATE) -> np.ndarray:
    """Concatenate audio; a number in the list is a pause of that many seconds."""
    chunks = [
        silence(p, rate) if isinstance(p, int | float) else np.asarray(p, dtype=np.int16) for p in parts
    ]
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)


def add_noise(pcm: np.ndarray, snr_db: float, seed: int | None = 0) -> np.ndarray:
    """White noise scaled so that (speech power / noise power) = snr_db over the voiced part."""
    x = pcm.astype(np.float64)
    voiced = x[np.abs(x) > 0.01 * max(1.0, float(np.max(np.abs(x))) if x.size else 1.0)]
    power = float(np.mean(voiced**2)) if voiced.size else 0.0
    if power == 0.0:
        raise AudioError("cannot set an SNR on silent audio")
    noise = np.random.default_rng(seed).standard_normal(x.size)
    noise *= np.sqrt(power / 10 ** (snr_db / 10))
    return np.clip(np.round(x + noise), -32768, 32767).astype(np.int16)


def dbfs(pcm: np.ndarray) -> float:
    if pcm.size == 0:
        return -120.0
    rms = float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2)))
    return 20 * np.log10(rms / 32768) if rms > 0 else -120.0


def tone(freq_hz: float, seconds: float, level_dbfs: float = -12.0, rate: int = RATE) -> np.ndarray:
    """A sine tone (e.g. the agent phone's 'voice' in transfer tests)."""
    t = np.arange(round(seconds * rate)) / rate
    amp = 32768 * 10 ** (level_dbfs / 20) * np.sqrt(2)
    return to_int16(np.sin(2 * np.pi * freq_hz * t) * amp / 32768)
