"""Test peers' material: how callees answer an outbound call — a person ("Hello?") or a voicemail
greeting (with or without the beep), in several voices, some on a noisy line.

Used by the campaign tests (the callee phone plays one) and by ``benchmarks/amd.py``, which
measures answering-machine detection on the whole set. Voices: Debian's flite voices (always
there) and, when asked for, the packaged piper and hibari voices.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ari_app.testcaller.audio import add_noise, synthesize, tone, with_pauses

Who = Literal["human", "machine"]

HUMAN = (
    "Hello?",
    "Hi, this is Maria.",
    "Yeah, hello?",
    "Hello, Smith residence.",
    "Good morning, Dave speaking.",
    "Hi there.",
    "Hello, who's calling?",
)
MACHINE = (
    "Hi, you've reached Maria. I can't take your call right now, please leave a message after the tone.",
    "The person you are calling is not available. At the tone, please record your message.",
    "Hey, it's Dave. Leave me a message and I'll call you back.",
    "You have reached the voicemail of John Smith. Please leave your name and number.",
    "Thanks for calling. Nobody can get to the phone right now, so leave a message.",
    "Smith. Leave a message.",  # the hard one: as short as a person's answer
)
FLITE_VOICES = ("slt", "kal", "awb", "rms")
BEEP_HZ, BEEP_S = 1000.0, 0.5
WAIT_S = 4.0  # a person waits for us after "Hello?"; a machine records silence after the beep


@dataclass(frozen=True)
class Greeting:
    who: Who
    text: str
    voice: str
    beep: bool
    noisy: bool
    pcm: np.ndarray  # 8 kHz int16, from the moment of answer

    @property
    def name(self) -> str:
        return f"{self.who}/{self.voice}/{'beep' if self.beep else 'nobeep'}/{'noisy' if self.noisy else 'clean'}/{self.text[:24]}"


def greeting_audio(speech: np.ndarray, who: Who, beep: bool, noisy: bool, lead_s: float = 0.3) -> np.ndarray:
    """What the line carries after answer: a short pause, the words, the beep, then silence."""
    parts: list[np.ndarray | float] = [lead_s, speech]
    if who == "machine" and beep:
        parts += [0.4, tone(BEEP_HZ, BEEP_S, level_dbfs=-10.0)]
    parts.append(WAIT_S)
    pcm = with_pauses(*parts)
    return add_noise(pcm, 15.0, seed=len(pcm)) if noisy else pcm


def flite_greeting(
    text: str, who: Who, voice: str = "slt", beep: bool = True, noisy: bool = False
) -> Greeting:
    pcm = greeting_audio(synthesize(text, "flite", voice=voice), who, beep, noisy)
    return Greeting(who, text, f"flite-{voice}", beep, noisy, pcm)


def corpus(voices: dict[str, list[np.ndarray]] | None = None) -> list[Greeting]:
    """Every greeting in every flite voice, machines with and without the beep, every third one
    noisy (15 dB). ``voices`` adds pre-rendered speech of other engines: name -> one array per
    text of HUMAN + MACHINE, in that order."""
    out: list[Greeting] = []
    rendered: dict[str, list[np.ndarray]] = {
        f"flite-{v}": [synthesize(t, "flite", voice=v) for t in (*HUMAN, *MACHINE)] for v in FLITE_VOICES
    }
    rendered.update(voices or {})
    for voice, speech in rendered.items():
        for i, text in enumerate((*HUMAN, *MACHINE)):
            who: Who = "human" if i < len(HUMAN) else "machine"
            noisy = i % 3 == 2
            for beep in (True, False) if who == "machine" else (False,):
                pcm = greeting_audio(speech[i], who, beep, noisy)
                out.append(Greeting(who, text, voice, beep, noisy, pcm))
    return out
