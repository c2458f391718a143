"""speech: scoring a closed set of answers against the audio, when free decoding missed.

Why: a one-word answer on a phone line is where Whisper guesses worst. Asked for a day, callers
say "Wednesday" and tiny.en writes "1G.", "Wendy." or "So sweet."; the same model, asked how
likely each of the few answers the question allows is, picks "Wednesday" by a wide margin
(34 of 35 one-word days right across five flite/espeak voices; tests/models/test_closed_set.py,
benchmarks/spoken_entities.py). So when the open question has a small set of expected
answers (``Expectation.candidates``: weekdays, the offered times, yes or no) and the free
transcript names none of them, each candidate is force-aligned with the encoded audio
(CTranslate2's ``Whisper.align``, one decoder pass per candidate, batched) and the best one is
offered as one more hypothesis, only when it wins clearly and scores like speech that was said.
The dialogue still validates it like any other hypothesis.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# Only short answers: a long turn is a sentence, and a sentence is no closed-set answer.
MAX_AUDIO_S = 3.0
# Sum of token log-probabilities of the best candidate: answers really said score -0.7 to -11 on
# our telephone voices; unrelated speech forced onto a candidate scores -15 and below.
MIN_LOGPROB = -12.0
# The best must beat the runner-up by this much (log-probability): a near tie is a guess.
MIN_MARGIN = 1.0


@dataclass(frozen=True)
class Pick:
    text: str
    logprob: float
    margin: float


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9 ]", "", text.lower().replace(":", "")).split())


def names_one(text: str, candidates: Sequence[str]) -> bool:
    """Does the transcript already contain one of the candidates (as whole words)?"""
    said = f" {_norm(text)} "
    return any(f" {_norm(c)} " in said for c in candidates if _norm(c))


def score(
    model: Any, tokenizer: Any, encoded: Any, frames: int, texts: Sequence[str]
) -> list[tuple[float, str]]:
    """Each text's summed token log-probability given the encoded audio, best first (one
    decoder pass per text, batched). ``model``: faster-whisper's ``WhisperModel``; ``encoded``:
    its encoder output for the audio (batch of one); ``frames``: mel frames of real audio in it."""
    import ctranslate2

    tokens = [tokenizer.encode(" " + t.rstrip(".") + ".") for t in texts]
    batch = ctranslate2.StorageView.from_array(np.repeat(np.asarray(encoded), len(texts), axis=0))
    results = model.model.align(
        batch, [*tokenizer.sot_sequence, tokenizer.no_timestamps], tokens, [frames // 2] * len(texts),
        median_filter_width=1,
    )  # fmt: skip
    return sorted(
        (
            (sum(math.log(max(p, 1e-9)) for p in r.text_token_probs), t)
            for t, r in zip(texts, results, strict=True)
        ),
        reverse=True,
    )


def best_clear(scored: list[tuple[float, str]]) -> Pick | None:
    """The best of scored texts when it scores like speech that was said and wins clearly."""
    if len(scored) < 2:
        return None
    (best, text), (second, _) = scored[0], scored[1]
    if best < MIN_LOGPROB or best - second < MIN_MARGIN:
        return None
    return Pick(text, round(best, 3), round(best - second, 3))


def pick(model: Any, tokenizer: Any, encoded: Any, frames: int, candidates: Sequence[str]) -> Pick | None:
    """The candidate the encoded audio supports best, or None when none wins clearly."""
    texts = list(dict.fromkeys(c.strip() for c in candidates if c.strip()))
    if len(texts) < 2:
        return None
    return best_clear(score(model, tokenizer, encoded, frames, texts))
