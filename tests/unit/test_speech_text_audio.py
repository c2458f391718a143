"""Text cleanup, clause splitting, levels, DTMF detection, WER and engine-load errors (no models)."""

from __future__ import annotations

import numpy as np
import pytest

from ari_app.media.constants import FRAME_BYTES
from ari_app.speech.asr import segment_confidence
from ari_app.speech.audio import float_to_pcm, frames, pcm_to_float, to_telephone
from ari_app.speech.cache import cache_key
from ari_app.speech.errors import SpeechEngineError, import_engine_module
from ari_app.speech.evaluation import peak_dbfs, telephone_channel, word_error_rate
from ari_app.speech.tts import COMMA_PAUSE_MS, SENTENCE_PAUSE_MS, TtsIdentity, clean_text, split_clauses
from ari_app.speech.vad import DtmfGuard, dtmf_tone_fraction


def tone(freqs: tuple[float, ...], ms: int, amp: float = 0.3) -> bytes:
    t = np.arange(8 * ms) / 8000
    return float_to_pcm(sum(amp * np.sin(2 * np.pi * f * t) for f in freqs))


def test_clean_text_keeps_speakable_characters() -> None:
    assert clean_text("Café — open 24/7 😀 “today”") == 'Cafe , open 24 slash 7 "today"'
    assert clean_text("Tom & Jerry @ home") == "Tom and Jerry at home"
    assert clean_text("😀🎉\x00\t") == ""


def test_first_sentence_is_split_at_commas_later_sentences_whole() -> None:
    clauses = split_clauses("Hello there, thanks for calling Acme, how can I help? We open at nine, daily.")
    assert clauses == [
        ("Hello there, thanks for calling Acme,", COMMA_PAUSE_MS),  # "Hello there," alone is too short
        ("how can I help?", SENTENCE_PAUSE_MS),
        ("We open at nine, daily.", 0),
    ]
    assert split_clauses("  ... !") == []
    assert split_clauses("Yes.") == [("Yes.", 0)]


def test_to_telephone_levels_and_never_clips() -> None:
    loud = np.sin(2 * np.pi * 440 * np.arange(24000) / 24000).astype(np.float32) * 1.5
    pcm = to_telephone(loud, 24000)
    assert len(pcm) == 8000 * 2
    assert -3.2 < peak_dbfs(pcm) <= -2.9
    quiet = to_telephone(loud * 0.1, 24000, gain_db=6.0)
    assert peak_dbfs(quiet) == pytest.approx(20 * np.log10(0.15 * 2), abs=0.2)


def test_frames_pad_the_last_partial_frame() -> None:
    out = frames(b"\1\0" * 200)
    assert [len(f) for f in out] == [FRAME_BYTES, FRAME_BYTES]
    assert pcm_to_float(out[1])[40:].max() == 0.0


def test_dtmf_fraction_separates_keypads_from_single_tones() -> None:
    assert dtmf_tone_fraction(tone((941, 1336), 20)) > 0.9  # "0"
    assert dtmf_tone_fraction(tone((440,), 20)) == 0.0  # dial tone component, single
    assert dtmf_tone_fraction(b"\0" * FRAME_BYTES) == 0.0


class AlwaysSpeech:
    name = "always"

    def speech_probability(self, frame: bytes) -> float:
        return 1.0

    def reset(self) -> None:
        pass


def test_dtmf_guard_silences_tone_frames_and_its_hangover() -> None:
    guard = DtmfGuard(AlwaysSpeech())
    pcm = tone((697, 1209), 100) + b"\0" * 3200
    probs = [guard.speech_probability(f) for f in frames(pcm)]
    assert probs[:11] == [0.0] * 11  # 5 tone frames + 6 hangover frames
    assert probs[11:] == [1.0] * (len(probs) - 11)
    speech_like = tone((180, 360, 540, 720), 20, amp=0.1)  # harmonic voice-like signal passes
    assert guard.speech_probability(speech_like) == 1.0


def test_word_error_rate() -> None:
    assert word_error_rate("ten of clubs", "10 of clubs.") == 0.0
    assert word_error_rate("and mister john", "And Mr. John") == 0.0
    assert word_error_rate("a b c d", "a x c") == pytest.approx(0.5)
    assert word_error_rate("", "") == 0.0


def test_ulaw_round_trip_is_lossy_but_close() -> None:
    pcm = tone((300, 1200), 100)
    out = telephone_channel(pcm)
    assert out != pcm and len(out) == len(pcm)
    assert np.max(np.abs(pcm_to_float(out) - pcm_to_float(pcm))) < 0.02


def test_segment_confidence() -> None:
    assert segment_confidence([]) is None
    assert segment_confidence([("hello", 0.0, 0.0)]) == 1.0
    low = segment_confidence([("hello", -1.0, 0.5)])
    assert low == pytest.approx(np.exp(-1) * 0.5, abs=1e-3)


def test_cache_key_depends_on_identity_and_spoken_text() -> None:
    ident = TtsIdentity("hibari", "0.2.1", "heart", 1.0, 0)
    assert cache_key(ident, "$5") == cache_key(ident, "five dollars")
    assert cache_key(ident, "Hello.") != cache_key(ident, "Hello!")
    assert cache_key(ident, "Hello.") != cache_key(TtsIdentity("hibari", "0.2.1", "heart", 1.1, 0), "Hello.")


def test_missing_engine_package_names_what_to_install() -> None:
    with pytest.raises(
        SpeechEngineError, match=r"TTS engine 'piper' needs package piper-tts: No module named"
    ):
        import_engine_module("TTS", "piper", "piper_not_installed_here", "piper-tts")
