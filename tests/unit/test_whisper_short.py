"""The loop guard of the short-context Whisper decoder (no model needed)."""

from __future__ import annotations

from ari_app.speech.whisper_short import drop_repeats, looped


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
