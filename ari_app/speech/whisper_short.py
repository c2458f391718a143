"""Whisper with a short audio context: the encoder sees ~10 s instead of 30 s.

Why: Whisper pads every input to 30 s, and on CPU the encoder of tiny.en takes ~270 ms of the
~400 ms per utterance for that padding alone (encoding 10 s takes ~45 ms). A caller's turn is a
few seconds, so we pad to ``context_s`` instead (whisper.cpp's ``audio_ctx`` idea). Short contexts
can make Whisper loop or mishear very short words, so: the output length is bounded by the audio
length, and a result with a poor average log-probability is decoded again with the full 30 s
context, keeping the better-scored of the two (for short turns and slot answers: RETRY_MAX_FRAMES). Measured on 26 telephone clips: WER unchanged
(0.14 both), median decode 130 ms instead of 400 ms, about 15 % of turns decoded twice.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ari_app.speech import closed_set, digit_repair

FULL_FRAMES = 3000  # 30 s of 10 ms mel frames
MAX_TOKENS_PER_S = 6  # fast speech is ~4 words/s; a loop blows far past this
# A weak decode of a turn that is no answer to a slot question (a request, an open turn) is
# decoded again with the full context only when it is this short (mel frames, the turn taker's
# 0.4 s of silence included): short words are where the short context mishears. Longer ones
# gained nothing from it (WER, turns cut as on the wire: FAQ questions 0.379 -> 0.346 without it,
# human clips 0.043 -> 0.033) and it cost them 6x the decode time (mean 218 -> 162 ms). Answers
# to a slot question are always retried: without it, yes/no answers read right fell 4 of 660.
RETRY_MAX_FRAMES = 150


@dataclass(frozen=True)
class Decoded:
    text: str
    avg_logprob: float
    no_speech_prob: float
    full_context: bool
    alternatives: tuple[str, ...] = ()  # the other beam hypotheses, best first (n_best > 1)
    picked: closed_set.Pick | None = None  # the closed-set or repaired answer appended to the alternatives


_SENTENCE = re.compile(r"[^.?!]+[.?!]*")


def _sentences(text: str) -> list[str]:
    return [m.group(0).strip() for m in _SENTENCE.finditer(text) if m.group(0).strip()]


def _norm(s: str) -> str:
    return re.sub(r"[^a-z0-9 ]", "", s.lower()).strip()


LOOP_RUN = 6  # the same word this many times in a row: "3, 3, 3, 3, 3, 3, ..." on a noisy line
LOOP_PHRASE_WORDS = 4  # ...or the same short phrase, 3 times or more: "fill in, fill in, fill in"


def _phrase_repeats(words: list[str]) -> bool:
    """A phrase of 2-4 words (not all digits: "1 2 1 2 1 2" may be a number) said 3+ times running."""
    for k in range(2, LOOP_PHRASE_WORDS + 1):
        for i in range(len(words) - 3 * k + 1):
            phrase = words[i : i + k]
            if all(w.isdigit() for w in phrase):
                continue
            if words[i + k : i + 2 * k] == phrase and words[i + 2 * k : i + 3 * k] == phrase:
                return True
    return False


def looped(text: str) -> bool:
    """Whisper's failure mode with too little context or noise: the same sentence, word or short
    phrase over and over ("fill in. fill in, fill in, fill in" for "Ten a.m." on the wire)."""
    sents = [_norm(s) for s in _sentences(text)]
    if any(a and (a == b or (b and a.startswith(b))) for a, b in itertools.pairwise(sents)):
        return True
    words = _norm(text).split()
    if any(len(set(words[i : i + LOOP_RUN])) == 1 for i in range(len(words) - LOOP_RUN + 1)):
        return True
    return _phrase_repeats(words)


def drop_repeats(text: str) -> str:
    """'Yes, please. Yes, please. Yes' -> 'Yes, please.'"""
    out: list[str] = []
    for s in _sentences(text):
        if out and (_norm(s) == _norm(out[-1]) or _norm(out[-1]).startswith(_norm(s))):
            continue
        out.append(s)
    return " ".join(out)


def _tight(frames: int) -> int:
    """A context of whole seconds that holds ``frames`` of audio and a second of silence after it."""
    return min(FULL_FRAMES, int(np.ceil(frames / 100 + 1)) * 100)


class ShortContextDecoder:
    def __init__(
        self, model: Any, language: str = "en", context_s: float = 10.0, retry_below: float = -0.9
    ) -> None:
        from faster_whisper.tokenizer import Tokenizer

        self.model = model  # faster_whisper.WhisperModel
        self.context_frames = int(context_s * 100)
        self.retry_below = retry_below
        self.tokenizer = Tokenizer(
            model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=language
        )
        self.prompt = model.get_prompt(self.tokenizer, previous_tokens=[], without_timestamps=True)
        self._prompts: dict[str, list[int]] = {}
        # Log-mel of silence: what Whisper expects after the speech (not zeros).
        self._silence = model.feature_extractor(np.zeros(FULL_FRAMES * 160 + 400, dtype=np.float32))

    def prompt_for(self, previous_text: str | None) -> list[int]:
        """The decoder prompt, with ``previous_text`` as Whisper's 'previous text' (biasing)."""
        if not previous_text:
            return self.prompt
        if previous_text not in self._prompts:
            tokens = self.tokenizer.encode(" " + previous_text.strip())
            self._prompts[previous_text] = self.model.get_prompt(
                self.tokenizer, previous_tokens=tokens, without_timestamps=True
            )
        return self._prompts[previous_text]

    def decode(
        self,
        audio16k: np.ndarray,
        previous_text: str | None = None,
        n_best: int = 1,
        candidates: Sequence[str] = (),
        digits: int | None = None,
        yes_no: bool = False,
        answer: bool = True,
    ) -> Decoded:
        """Free decoding (short context, then full when weak; ``answer``: the turn answers a slot
        question, see RETRY_MAX_FRAMES); with ``candidates``, a short answer
        that names none of them also gets the closed-set pick (closed_set.py) as a hypothesis;
        with ``digits``, a number one digit off gets its repair (digit_repair.py); with
        ``yes_no``, a short answer that reads as neither gets the yes or no it starts with."""
        feats = self.model.feature_extractor(audio16k)
        n = min(feats.shape[-1], FULL_FRAMES)
        prompt = self.prompt_for(previous_text)
        short = max(self.context_frames, _tight(n))
        if short >= FULL_FRAMES or self.context_frames <= 0:
            enc = self._encode(feats, n, FULL_FRAMES)
            return self._with_pick(
                self._generate(enc, n, FULL_FRAMES, prompt, n_best), enc, feats, candidates, digits, yes_no
            )
        enc = self._encode(feats, n, short)
        first = self._generate(enc, n, short, prompt, n_best)
        weak = first.avg_logprob < self.retry_below and (answer or n <= RETRY_MAX_FRAMES)
        if not weak and not looped(first.text):
            return self._with_pick(first, enc, feats, candidates, digits, yes_no)
        second = self._generate(self._encode(feats, n, FULL_FRAMES), n, FULL_FRAMES, prompt, n_best)
        best = second if second.avg_logprob > first.avg_logprob or looped(first.text) else first
        best = Decoded(drop_repeats(best.text), best.avg_logprob, best.no_speech_prob, best.full_context,
                       tuple(drop_repeats(a) for a in best.alternatives))  # fmt: skip
        return self._with_pick(best, enc, feats, candidates, digits, yes_no)

    def _with_pick(
        self,
        d: Decoded,
        enc: Any,
        feats: np.ndarray,
        candidates: Sequence[str],
        digits: int | None,
        yes_no: bool,
    ) -> Decoded:
        n = min(feats.shape[-1], FULL_FRAMES)
        if digits:
            fixed = digit_repair.repair(self.model, self.tokenizer, enc, n, (d.text, *d.alternatives), digits)
            return (
                d if fixed is None else replace(d, alternatives=(*d.alternatives, fixed.text), picked=fixed)
            )
        if yes_no and candidates and n <= closed_set.CHANGE_MAX_AUDIO_S * 100:
            # At a confirmation, candidates are the values that may be changed to.
            fixed = closed_set.pick_correction(self.model, self.tokenizer, enc, n, d.text, candidates)
            if fixed is not None:
                return replace(d, alternatives=(*d.alternatives, fixed.text), picked=fixed)
        if (not candidates and not yes_no) or n > closed_set.MAX_AUDIO_S * 100:
            return d
        named = (*closed_set.YES_STARTS, *closed_set.NO_STARTS, "What") if yes_no else candidates
        if any(closed_set.names_one(t, named) for t in (d.text, *d.alternatives)):
            return d
        got = (
            # Two dozen starts over the decode's 10 s context cost ~360 ms; over the answer's own
            # length plus a second, ~90 ms (one more encode, ~10 ms). The offered values and days
            # stay on the decode's context: scored over the short one, "Ten a.m." written "fill
            # in" was no longer picked (task-success run 12, benchmarks/results).
            closed_set.pick_yes_no(self.model, self.tokenizer, self._encode(feats, n, _tight(n)), n)
            if yes_no
            else closed_set.pick(self.model, self.tokenizer, enc, n, candidates)
        )
        if got is None:
            return d
        return replace(d, alternatives=(*d.alternatives, got.text), picked=got)

    def _encode(self, feats: np.ndarray, n: int, frames: int) -> Any:
        import ctranslate2

        seg = np.empty((1, feats.shape[0], frames), dtype=np.float32)
        seg[0, :, :n] = feats[:, :n]
        seg[0, :, n:] = self._silence[:, : frames - n]
        return self.model.model.encode(ctranslate2.StorageView.from_array(seg), to_cpu=False)

    def _generate(self, enc: Any, n: int, frames: int, prompt: list[int], n_best: int = 1) -> Decoded:
        res = self.model.model.generate(
            enc,
            [prompt],
            beam_size=n_best,
            num_hypotheses=n_best,
            # CTranslate2 counts the prompt in max_length: a biasing prompt gets room for its tokens.
            max_length=len(prompt) - len(self.prompt) + int(min(224, 12 + n / 100 * MAX_TOKENS_PER_S)),
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=[-1],
        )[0]
        eot = self.tokenizer.eot
        texts = [self.tokenizer.decode([t for t in ids if t < eot]).strip() for ids in res.sequences_ids]
        alternatives = tuple(dict.fromkeys(t for t in texts[1:] if t and t != texts[0]))
        return Decoded(texts[0], float(res.scores[0]), float(res.no_speech_prob), frames == FULL_FRAMES,
                       alternatives)  # fmt: skip
