"""The loop guard of the short-context Whisper decoder (no model needed)."""

from __future__ import annotations

from ari_app.speech.whisper_short import drop_repeats, looped


def test_a_repeated_sentence_is_a_loop_and_is_collapsed() -> None:
    assert looped("Yes, please. Yes, please. Yes")
    assert drop_repeats("Yes, please. Yes, please. Yes") == "Yes, please."
    assert looped("I wanted to talk to a person. I wanted to talk to a person.")


def test_normal_speech_is_left_alone() -> None:
    for text in ("five five five one two", "Hello. How are you?", "No. No thanks.", "Yes, please."):
        assert drop_repeats(text) == text
    assert not looped("five five five one two")
    assert not looped("Hello. How are you?")
