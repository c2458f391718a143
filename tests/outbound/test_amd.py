"""Answering-machine detection, the pure parts: the greeting-timing rule and the beep detector."""

from __future__ import annotations

import numpy as np

from ari_app.outbound.amd import BeepDetector, GreetingDetector
from ari_app.testcaller.audio import add_noise, tone, with_pauses


def feed(det: GreetingDetector, pattern: list[tuple[float, float]]) -> str | None:
    """pattern: (seconds, probability) runs of 20 ms frames."""
    for seconds, prob in pattern:
        for _ in range(round(seconds / 0.02)):
            if det.feed(prob) is not None:
                return det.verdict
    return det.verdict


def test_a_short_hello_then_waiting_is_a_person() -> None:
    det = GreetingDetector()
    assert feed(det, [(0.3, 0.0), (0.6, 0.9), (1.0, 0.0)]) == "human"
    assert det.decided_at is not None and det.decided_at < 1.7  # decided soon after the pause


def test_a_long_greeting_is_a_machine_as_soon_as_it_is_too_long() -> None:
    det = GreetingDetector()
    # words with short pauses, like a recorded greeting
    assert feed(det, [(0.3, 0.0)] + [(0.5, 0.9), (0.2, 0.1)] * 8) == "machine"
    assert det.decided_at is not None and det.decided_at < 3.0


def test_silence_is_unsure_not_a_machine() -> None:
    assert feed(GreetingDetector(), [(6.0, 0.0)]) == "unsure"


def test_voicemail_words_turn_a_short_greeting_into_a_machine() -> None:
    det = GreetingDetector()
    assert feed(det, [(0.3, 0.0), (1.2, 0.9), (1.0, 0.0)]) == "human"
    assert det.refine("Smith. Leave a message.") == "machine"
    assert GreetingDetector().refine("Hello, who's calling?") is None  # no verdict to change yet


def frames_of(pcm: np.ndarray) -> list[bytes]:
    b = pcm.astype("<i2").tobytes()
    return [b[i : i + 320] for i in range(0, len(b) - 319, 320)]


def beep_end(pcm: np.ndarray) -> int | None:
    det = BeepDetector()
    for i, f in enumerate(frames_of(pcm)):
        if det.feed(f):
            return i
    return None


def test_the_beep_is_found_and_its_end_reported() -> None:
    pcm = with_pauses(0.5, tone(1000, 0.5, level_dbfs=-10), 1.0)
    end = beep_end(pcm)
    assert end is not None and 49 <= end <= 53  # 0.5 s silence + 0.5 s beep = frame 50


def test_a_noisy_beep_is_still_a_beep() -> None:
    pcm = add_noise(with_pauses(0.5, tone(850, 0.4, level_dbfs=-12), 1.0), 15.0)
    assert beep_end(pcm) is not None


def test_speech_like_audio_and_noise_are_not_a_beep() -> None:
    rng = np.random.default_rng(1)
    chirp = (np.sin(2 * np.pi * np.cumsum(rng.uniform(200, 1800, 8000)) / 8000) * 8000).astype(np.int16)
    noise = (rng.standard_normal(8000) * 3000).astype(np.int16)
    assert beep_end(with_pauses(chirp, 0.5)) is None
    assert beep_end(with_pauses(noise, 0.5)) is None
