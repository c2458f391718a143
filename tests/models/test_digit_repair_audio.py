"""Digit repair on real audio: 10-digit numbers said in three groups with "oh" for zero, which
tiny.en writes one digit short on this 8 kHz µ-law line (measured: flite kal '247 753 0169' ->
'2 4 7 7 5 3, 1 6 9.', slt '272 856 7220' -> '2 7 2 8 5 6 7 2 2'), come back whole as a
hypothesis the slot's validator takes (speech/digit_repair.py)."""

from __future__ import annotations

import numpy as np
import pytest

from ari_app.speech.asr import WhisperAsr
from ari_app.speech.digit_repair import digits_in
from ari_app.speech.evaluation import telephone_channel
from ari_app.speech.expectation import Expectation
from ari_app.testcaller import audio

pytestmark = pytest.mark.models

WORDS = "zero one two three four five six seven eight nine".split()


@pytest.fixture(scope="module")
def whisper() -> WhisperAsr:
    return WhisperAsr("tiny.en", threads=2)


def grouped_number(digits: str, voice: str) -> bytes:
    def say(group: str) -> np.ndarray:
        return audio.synthesize(
            " ".join("oh" if d == "0" else WORDS[int(d)] for d in group), "flite", voice=voice
        )

    pcm = audio.with_pauses(0.4, say(digits[:3]), 0.5, say(digits[3:6]), 0.5, say(digits[6:]), 1.0)
    return telephone_channel(np.asarray(pcm, dtype="<i2").tobytes())


@pytest.mark.parametrize(
    ("digits", "voice"), [("2477530169", "kal"), ("2728567220", "slt"), ("3007728378", "awb")]
)
def test_a_number_heard_one_digit_short_is_recovered(whisper: WhisperAsr, digits: str, voice: str) -> None:
    tr = whisper.transcribe_sync(grouped_number(digits, voice), Expectation("digits", 10))
    heard = [digits_in(h) for h in (tr.text, *tr.alternatives)]
    # What the slot's validator takes: the first hypothesis with 10 digits.
    assert next((h for h in heard if len(h) == 10), None) == digits, (tr.text, tr.alternatives)


def test_no_repair_for_an_open_question_or_a_short_number(whisper: WhisperAsr) -> None:
    pcm = grouped_number("2477530169", "kal")
    for expect in (None, Expectation("text")):
        assert whisper.transcribe_sync(pcm, expect).alternatives == ()  # one hypothesis, no repair
    # A 4-digit question: the beam's two other hypotheses at most, nothing added.
    assert len(whisper.transcribe_sync(pcm, Expectation("digits", 4)).alternatives) <= 2
