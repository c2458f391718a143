"""On-disk prompt cache: fixed prompts ("Thanks for calling...") are synthesised once.

Key = sha256 of everything that changes the audio (engine, its version, voice, rate, seed) plus the
text as the engine will read it. Value = the raw 8 kHz int16 PCM. A hit costs a file read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

from ari_app.speech.normalize import normalize_for_speech
from ari_app.speech.tts import Tts, TtsIdentity, clean_text

log = logging.getLogger(__name__)


# Bumped when our own processing of engine audio (trim, level, resampling) changes the bytes.
PROCESSING_VERSION = 2  # 2: leading/trailing silence judged on 5 ms energy windows


def cache_key(identity: TtsIdentity, text: str, normalize_text: bool = True) -> str:
    spoken = clean_text(normalize_for_speech(text) if normalize_text else text)
    fields = [
        PROCESSING_VERSION,
        identity.engine,
        identity.version,
        identity.voice,
        identity.rate,
        identity.seed,
        spoken,
    ]
    return hashlib.sha256(json.dumps(fields).encode()).hexdigest()


class CachedTts:
    """Wraps any Tts. Misses stream through from the engine (and are stored once complete);
    hits return the stored bytes, identical to the first synthesis."""

    def __init__(self, tts: Tts, cache_dir: Path) -> None:
        self.inner = tts
        self.identity = tts.identity
        self.cache_dir = Path(cache_dir) / "prompts"
        self.hits = 0
        self.misses = 0

    def path_for(self, text: str) -> Path:
        key = cache_key(self.identity, text, getattr(self.inner, "normalize_text", True))
        return self.cache_dir / key[:2] / f"{key}.pcm"

    def lookup(self, text: str) -> bytes | None:
        try:
            return self.path_for(text).read_bytes()
        except FileNotFoundError:
            return None

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        path = self.path_for(text)
        try:
            audio = path.read_bytes()
        except FileNotFoundError:
            audio = None
        except OSError as e:  # unreadable cache: speak anyway
            log.warning("prompt cache %s unreadable (%s); synthesising", path, e)
            audio = None
        if audio is not None:
            self.hits += 1
            if audio:
                yield audio
            return
        self.misses += 1
        chunks: list[bytes] = []
        async for chunk in self.inner.synthesize(text):
            chunks.append(chunk)
            yield chunk
        # Reached only when the caller consumed everything: a barge-in (generator closed early)
        # never stores a truncated prompt.
        self._store(path, b"".join(chunks))

    def _store(self, path: Path, audio: bytes) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as f:
                f.write(audio)
            os.replace(tmp, path)  # atomic: concurrent readers see all or nothing
        except OSError as e:
            log.warning("prompt cache %s not writable (%s); continuing without caching", path.parent, e)

    async def warm(self, texts: Iterable[str]) -> int:
        """Pre-synthesise fixed prompts; returns how many were new."""
        new = 0
        for text in texts:
            if self.path_for(text).is_file():
                continue
            async for _ in self.synthesize(text):
                pass
            new += 1
        return new
