"""Measuring speech quality: word error rate, telephone-channel simulation, and the real human
clips with reference transcripts that Debian's ``pocketsphinx-testdata`` ships.

Used by the model tests, ``models_check`` and the benchmark.
"""

from __future__ import annotations

import re
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

from ari_app.media.constants import SAMPLE_RATE
from ari_app.speech.audio import float_to_pcm, pcm_to_float, read_wav, resample

if sys.version_info >= (3, 13):  # audioop left the stdlib in 3.13; audioop-lts is its drop-in
    import audioop_lts as audioop  # type: ignore[import-not-found]
else:
    with warnings.catch_warnings():  # deprecated in 3.11-3.12, but it is the stdlib G.711 codec
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop

POCKETSPHINX_DATA = Path("/usr/share/pocketsphinx/test/data")

_WORD = re.compile(r"[a-z0-9']+")
_SPOKEN_FORMS = {
    "0": "zero", "1": "one", "2": "two", "3": "three", "4": "four",
    "5": "five", "6": "six", "7": "seven", "8": "eight", "9": "nine", "10": "ten",
    "mr": "mister", "mrs": "missus", "dr": "doctor", "st": "saint",
}  # fmt: skip


def words(text: str) -> list[str]:
    """Lower-case words without punctuation; lone digits and titles spelled out (Whisper writes "10", "Mr.")."""
    out = []
    for w in _WORD.findall(text.lower().replace("-", " ")):
        out.append(_SPOKEN_FORMS.get(w, w))
    return out


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words, by Levenshtein over words."""
    ref, hyp = words(reference), words(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1] / len(ref)


def corpus_wer(pairs: list[tuple[str, str]]) -> float:
    """Pooled WER over (reference, hypothesis) pairs, weighted by reference length."""
    errors = sum(word_error_rate(r, h) * len(words(r)) for r, h in pairs)
    total = sum(len(words(r)) for r, _ in pairs)
    return errors / total if total else 0.0


def telephone_channel(pcm8k: bytes) -> bytes:
    """What the far end hears: a G.711 µ-law encode/decode round trip of 8 kHz int16 PCM."""
    return audioop.ulaw2lin(audioop.lin2ulaw(pcm8k, 2), 2)


@dataclass(frozen=True)
class Clip:
    name: str
    text: str
    pcm8k: bytes  # already through the µ-law telephone channel


def _read_transcriptions(path: Path) -> dict[str, str]:
    refs = {}
    for line in path.read_text().splitlines():
        m = re.match(r"\s*(.*?)\s*\(([^)]+)\)\s*$", line)
        if m:
            refs[m.group(2)] = re.sub(r"</?s>", "", m.group(1)).strip()
    return refs


def pocketsphinx_clips(data_dir: Path = POCKETSPHINX_DATA) -> list[Clip]:
    """The transcribed human recordings (librivox read speech, spoken card names), at 8 kHz µ-law."""
    sets = [
        (data_dir / "librivox", data_dir / "librivox" / "transcription", "{}.wav"),
        (data_dir / "cards", data_dir / "cards" / "cards.transcription", "{}.wav"),
    ]
    clips = []
    for folder, ref_file, pattern in sets:
        if not ref_file.is_file():
            continue
        for name, text in sorted(_read_transcriptions(ref_file).items()):
            wav = folder / pattern.format(name)
            if not wav.is_file():
                continue
            samples, rate = read_wav(wav.read_bytes())
            pcm = float_to_pcm(resample(samples, rate, SAMPLE_RATE))
            clips.append(Clip(f"{folder.name}/{name}", text, telephone_channel(pcm)))
    if not clips:
        raise FileNotFoundError(
            f"no transcribed clips under {data_dir}: install the Debian package pocketsphinx-testdata"
        )
    return clips


def peak_dbfs(pcm: bytes) -> float:
    import math

    samples = pcm_to_float(pcm)
    peak = float(abs(samples).max()) if samples.size else 0.0
    return 20 * math.log10(peak) if peak > 0 else float("-inf")
