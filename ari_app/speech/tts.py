"""Text-to-speech: text in, a stream of 8 kHz int16 PCM chunks out, first clause first.

The first sentence is cut at commas so the caller hears audio after synthesising a few words, not
a whole sentence; later sentences are synthesised whole (better prosody) while earlier ones play.
Engines (tts_engines.py) only turn one clause into float audio; this module does the text cleanup,
clause splitting, silence trimming, level and resampling so every engine sounds alike on the line.
"""

from __future__ import annotations

import asyncio
import re
import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from ari_app import stage_cpu
from ari_app.media.constants import SAMPLE_RATE
from ari_app.speech.audio import to_telephone, trim_leading_silence, trim_trailing_silence
from ari_app.speech.normalize import normalize_for_speech

if TYPE_CHECKING:
    from ari_app.speech.settings import TtsSettings

COMMA_PAUSE_MS = 120
SENTENCE_PAUSE_MS = 250


@dataclass(frozen=True)
class TtsIdentity:
    """Everything that changes the audio for a given text: the prompt-cache key is built from it."""

    engine: str
    version: str
    voice: str
    rate: float
    seed: int | None


class Tts(Protocol):
    identity: TtsIdentity

    def synthesize(self, text: str) -> AsyncIterator[bytes]:
        """8 kHz int16 PCM chunks, first clause first. Empty or unspeakable text yields nothing."""
        ...


# Typographic characters engines stumble over, mapped to what they mean when read aloud.
_REPLACEMENTS = {
    "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": ", ", "\u2014": ", ",
    "\u2026": ".", "&": " and ", "@": " at ", "%": " percent", "+": " plus ", "=": " equals ",
    "#": " number ", "/": " slash ", "*": " star ", "~": " about ",
}  # fmt: skip
_UNSPEAKABLE = re.compile(r"[^A-Za-z0-9 .,;:!?'\"()\-$]")


def clean_text(text: str) -> str:
    """Keep what a voice can read: ASCII letters, digits, basic punctuation. Emoji and symbols go."""
    text = unicodedata.normalize("NFKC", text)
    for src, dst in _REPLACEMENTS.items():
        text = text.replace(src, dst)
    # Accented letters keep their base letter ("café" -> "cafe") instead of vanishing.
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = _UNSPEAKABLE.sub(" ", text)
    return re.sub(r"\s+", " ", text).strip()


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_CLAUSE_END = re.compile(r"(?<=[,;:])\s+")
_MIN_CLAUSE_WORDS = 3  # shorter pieces sound clipped on their own: merge them with the next


def split_clauses(text: str) -> list[tuple[str, int]]:
    """(clause, pause after it in ms). The first sentence is split at commas, the rest by sentence."""
    sentences = [s.strip() for s in _SENTENCE_END.split(text) if re.search(r"[A-Za-z0-9]", s)]
    if not sentences:
        return []
    pieces: list[str] = []
    for part in _CLAUSE_END.split(sentences[0]):
        if pieces and len(pieces[-1].split()) < _MIN_CLAUSE_WORDS:
            pieces[-1] = f"{pieces[-1]} {part}"
        else:
            pieces.append(part)
    if len(pieces) > 1 and len(pieces[-1].split()) < _MIN_CLAUSE_WORDS:
        pieces[-2:] = [f"{pieces[-2]} {pieces[-1]}"]
    out = [(p, COMMA_PAUSE_MS) for p in pieces[:-1]]
    out.append((pieces[-1], SENTENCE_PAUSE_MS))
    out += [(s, SENTENCE_PAUSE_MS) for s in sentences[1:]]
    last_text, _ = out[-1]
    out[-1] = (last_text, 0)
    return out


def prepare_text(text: str, normalize_text: bool = True) -> list[tuple[str, int]]:
    """What an engine is given: normalised, cleaned, split into (clause, pause ms). Shared by the
    embedded engines and the remote client (remote_tts.py), so both say the same clauses."""
    if normalize_text:
        text = normalize_for_speech(text)
    return split_clauses(clean_text(text))


class ClauseTts:
    """Base for engines with a blocking ``render(clause) -> (float samples, rate)``: runs it in a
    thread, trims the engine's own silences, adds our pauses, levels and resamples to 8 kHz."""

    identity: TtsIdentity
    gain_db: float = 0.0

    def __init__(self, normalize_text: bool = True) -> None:
        self.normalize_text = normalize_text

    def render(self, clause: str) -> tuple[np.ndarray, int]:
        raise NotImplementedError

    def prepare(self, text: str) -> list[tuple[str, int]]:
        return prepare_text(text, self.normalize_text)

    def render_clause(self, clause: str, pause_ms: int) -> bytes:
        with stage_cpu.measured("tts"):
            return self._render_clause(clause, pause_ms)

    def _render_clause(self, clause: str, pause_ms: int) -> bytes:
        samples, rate = self.render(clause)
        samples = trim_trailing_silence(trim_leading_silence(samples, rate), rate, keep_ms=30)
        if samples.size == 0:
            return b""
        pcm = to_telephone(samples, rate, self.gain_db)
        return pcm + b"\0\0" * (SAMPLE_RATE * pause_ms // 1000)

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        for clause, pause_ms in self.prepare(text):
            pcm = await loop.run_in_executor(None, self.render_clause, clause, pause_ms)
            if pcm:
                yield pcm

    def synthesize_sync(self, text: str) -> bytes:
        """The whole text at once (warm-up, prompt files, tests)."""
        return b"".join(self.render_clause(c, p) for c, p in self.prepare(text))


def make_tts(settings: TtsSettings, cache_dir: Path | None = None, cache_max_mb: int = 200) -> Tts:
    """The configured engine, wrapped in the prompt cache when ``cache_dir`` is given."""
    from ari_app.speech.cache import CachedTts

    if settings.engine != "openai":
        engine = make_embedded_tts(settings, settings.engine)
        return CachedTts(engine, cache_dir, cache_max_mb * 1024 * 1024) if cache_dir is not None else engine
    from ari_app.speech.remote_tts import FallbackCachedTts, FallbackTts, OpenAiTts

    remote = OpenAiTts(settings.openai, rate=settings.rate, normalize_text=settings.normalize_text)
    if not settings.fallback_to_embedded:
        return CachedTts(remote, cache_dir, cache_max_mb * 1024 * 1024) if cache_dir is not None else remote
    both = FallbackTts(remote, make_embedded_tts(settings, settings.fallback_engine))
    return FallbackCachedTts(both, cache_dir, cache_max_mb * 1024 * 1024) if cache_dir is not None else both


def make_embedded_tts(settings: TtsSettings, name: str) -> ClauseTts:
    """One of our own engines (also what ``ari-app speech serve`` serves), uncached."""
    from ari_app.speech import tts_engines

    if name == "hibari":
        return tts_engines.HibariTts(rate=settings.rate, normalize_text=settings.normalize_text)
    if name == "piper":
        return tts_engines.PiperTts(rate=settings.rate, normalize_text=settings.normalize_text)
    return tts_engines.FliteTts(
        voice=settings.flite_voice,
        rate=settings.rate,
        binary=settings.flite_binary,
        normalize_text=settings.normalize_text,
    )
