"""On-disk prompt cache: fixed prompts ("Thanks for calling...") are synthesised once.

Key = sha256 of everything that changes the audio (engine, its version, voice, rate, seed) plus the
text as the engine will read it. Value = the raw 8 kHz int16 PCM. A hit costs a file read.

Only fixed prompts are cached (the ones ``warm`` was given: flow prompts without template fields
and the agent's own fixed lines). A prompt rendered for one caller ("Thanks Dana", a read-back,
the whisper with the phone number) streams from the engine and never touches the disk. The
directory is bounded (``max_bytes``, least recently used first out), and at start-up every file
that is not a current fixed prompt is removed, so what older versions wrote does not linger.
"""

from __future__ import annotations

import contextlib
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

    def __init__(self, tts: Tts, cache_dir: Path, max_bytes: int = 200 * 1024 * 1024) -> None:
        self.inner = tts
        self.identity = tts.identity
        self.cache_dir = Path(cache_dir) / "prompts"
        self.max_bytes = max_bytes
        self.hits = 0
        self.misses = 0
        self._fixed: set[str] = set()  # texts that may be stored: no caller data in them

    def path_for(self, text: str) -> Path:
        key = cache_key(self.identity, text, getattr(self.inner, "normalize_text", True))
        return self.cache_dir / key[:2] / f"{key}.pcm"

    def lookup(self, text: str) -> bytes | None:
        try:
            return self.path_for(text).read_bytes()
        except FileNotFoundError:
            return None

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        if text not in self._fixed:  # may hold caller data: never written to disk
            async for chunk in self.inner.synthesize(text):
                yield chunk
            return
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
            with contextlib.suppress(OSError):
                os.utime(path)  # recently used: evicted last
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
            return
        self._evict()

    def _files(self) -> list[tuple[float, int, Path]]:
        out = []
        for p in self.cache_dir.glob("*/*.pcm"):
            with contextlib.suppress(OSError):
                st = p.stat()
                out.append((st.st_mtime, st.st_size, p))
        return sorted(out)

    def _evict(self) -> None:
        files = self._files()
        total = sum(size for _, size, _ in files)
        for _, size, p in files:  # oldest use first
            if total <= self.max_bytes:
                break
            with contextlib.suppress(OSError):
                p.unlink()
                total -= size

    def prune(self) -> int:
        """Remove every cached file that is not a current fixed prompt; returns how many."""
        keep = {self.path_for(t) for t in self._fixed}
        removed = 0
        for _, _, p in self._files():
            if p not in keep:
                with contextlib.suppress(OSError):
                    p.unlink()
                    removed += 1
        return removed

    def allow(self, texts: Iterable[str]) -> None:
        """These texts hold no caller data: they may be stored."""
        self._fixed.update(texts)

    async def warm(self, texts: Iterable[str]) -> int:
        """Pre-synthesise fixed prompts (and allow them to be cached); returns how many were new."""
        texts = list(texts)
        self.allow(texts)
        new = 0
        for text in texts:
            if self.path_for(text).is_file():
                continue
            async for _ in self.synthesize(text):
                pass
            new += 1
        return new
