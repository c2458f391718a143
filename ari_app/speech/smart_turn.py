"""speech: semantic end of turn — has the caller finished, judged from the sound of the turn.

Why: a fixed silence wait is most of a turn's latency, and a short one cuts callers off at
mid-sentence pauses. Smart Turn v3.2 (Daily, BSD-2) is a small Whisper-encoder classifier that
hears intonation and rhythm: "I'd like to..." with a rising, held pitch is not finished, "Next
Tuesday." is. We run its ONNX file (``smart-turn-v3.2-cpu.onnx``, shipped inside the pipecat-ai
wheel, installed for that file only) with onnxruntime, and its numpy feature code from the same
wheel, loaded by path: pipecat itself is never imported.

It was trained on 16 kHz speech: telephone audio is resampled from 8 kHz first (fed 8 kHz
directly it misjudges). benchmarks/smart_turn_eval.py measures it on 8 kHz µ-law turns.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from ari_app.media.constants import SAMPLE_RATE
from ari_app.speech.audio import pcm_to_float, resample
from ari_app.speech.errors import SpeechEngineError

DISTRIBUTION = "pipecat-ai"
MODEL_FILE = "pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"
FEATURES_FILE = "pipecat/audio/turn/smart_turn/_whisper_features.py"
MODEL_RATE = 16000
WINDOW_S = 8  # the model hears the last 8 s of the turn (zero-padded in front when shorter)


def _wheel_file(rel: str) -> Path:
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise SpeechEngineError(
            f"end-of-turn model 'smart-turn' needs the {DISTRIBUTION} wheel (pyproject extra 'turn'; "
            "make run / make test install it from requirements.lock)"
        ) from None
    path = Path(str(dist.locate_file(rel)))
    if not path.is_file():
        raise SpeechEngineError(f"end-of-turn model 'smart-turn': {path} is missing from {DISTRIBUTION}")
    return path


def _features_module() -> Any:
    spec = importlib.util.spec_from_file_location("ari_app_smart_turn_features", _wheel_file(FEATURES_FILE))
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # numpy only: the file imports nothing of pipecat
    return mod


class SmartTurn:
    """``probability(pcm8k)``: how likely the turn so far (8 kHz int16 PCM) is complete, 0..1."""

    name = "smart-turn-v3.2"

    def __init__(self, threads: int = 1) -> None:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.inter_op_num_threads = 1
        so.intra_op_num_threads = threads
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self._session = ort.InferenceSession(str(_wheel_file(MODEL_FILE)), sess_options=so)
        except (RuntimeError, ValueError, OSError) as e:
            raise SpeechEngineError(f"end-of-turn model 'smart-turn' failed to load: {e}") from None
        self._features = _features_module().compute_whisper_log_mel_features

    def probability(self, pcm8k: bytes, rate: int = SAMPLE_RATE) -> float:
        audio = pcm_to_float(pcm8k)
        if rate != MODEL_RATE:
            audio = resample(audio, rate, MODEL_RATE)
        n = WINDOW_S * MODEL_RATE
        audio = audio[-n:] if audio.size > n else np.pad(audio, (n - audio.size, 0))
        mel = self._features(audio.astype(np.float32), do_normalize=True)
        out = self._session.run(None, {"input_features": np.expand_dims(mel, 0).astype(np.float32)})
        return float(np.asarray(out[0]).reshape(-1)[0])
