"""The loop guard and the retry rule of the short-context Whisper decoder (no model needed)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from ari_app.speech.whisper_short import FULL_FRAMES, Decoded, ShortContextDecoder, drop_repeats, looped


def test_a_repeated_sentence_is_a_loop_and_is_collapsed() -> None:
    assert looped("Yes, please. Yes, please. Yes")
    assert drop_repeats("Yes, please. Yes, please. Yes") == "Yes, please."
    assert looped("I wanted to talk to a person. I wanted to talk to a person.")


def test_a_short_phrase_over_and_over_is_a_loop() -> None:
    # "Ten a.m." as the live turn taker cut it (espeak-ng en-029, task-success run 16)
    assert looped("fill in. fill in, fill in, fill in, fill in,")
    assert looped("thank you thank you thank you")
    assert not looped("1 2 1 2 1 2")  # a number may repeat its digits
    assert not looped("fill in, fill in")


def test_normal_speech_is_left_alone() -> None:
    for text in (
        "five five five one two",
        "Hello. How are you?",
        "No. No thanks.",
        "Yes, please.",
        "the ten, the ten thirty one",
    ):
        assert drop_repeats(text) == text
    assert not looped("five five five one two")
    assert not looped("Hello. How are you?")


def _decoder(contexts: list[int]) -> ShortContextDecoder:
    """A decoder whose model writes a weak "x" on the short context and a good one on 30 s."""
    d = ShortContextDecoder.__new__(ShortContextDecoder)
    d.context_frames, d.retry_below = 1000, -0.9
    d.model = SimpleNamespace(feature_extractor=lambda audio: np.zeros((80, audio.size // 160)))
    d.prompt_for = lambda text: [1]  # type: ignore[method-assign]
    d._encode = lambda feats, n, frames: frames  # type: ignore[method-assign]
    d._with_pick = lambda decoded, *rest: decoded  # type: ignore[method-assign]

    def generate(enc: int, n: int, frames: int, prompt: list[int], n_best: int = 1) -> Decoded:
        contexts.append(frames)
        return Decoded("x", -0.5 if frames == FULL_FRAMES else -1.5, 0.0, frames == FULL_FRAMES, ())

    d._generate = generate  # type: ignore[method-assign]
    return d


@pytest.mark.parametrize(("seconds", "answer", "retried"), [
    (1.0, False, True),  # a short open turn: short words are where the short context mishears
    (3.0, False, False),  # a long request: the retry bought nothing and cost 6x the time
    (3.0, True, True),  # an answer to a slot question is always retried when weak
])  # fmt: skip
def test_a_weak_decode_is_retried_with_the_full_context_for_short_turns_and_answers(
    seconds: float, answer: bool, retried: bool
) -> None:
    contexts: list[int] = []
    got = _decoder(contexts).decode(np.zeros(int(seconds * 16000), dtype=np.float32), answer=answer)
    assert (FULL_FRAMES in contexts) is retried
    assert got.full_context is retried
