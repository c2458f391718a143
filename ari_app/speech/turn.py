"""speech: the turn-taking settings, every default with its reason (like LiveKit's voice/turn.py).

Settings only. The machines that use them live beside it: ``endpointing.py`` (where a caller's
turn starts and ends), ``recognition.py`` (speculative ASR, the transcribed turn),
``barge_in.py`` (the caller talking over a prompt). All durations are counted in 20 ms frames,
not wall time, so behaviour does not depend on how bursty frame delivery is.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ari_app.media.constants import FRAME_MS


class TurnSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # A frame is voiced at or above this probability...
    speech_threshold: float = Field(default=0.5, gt=0, lt=1)
    # ...and, once speech has started, stays "still speech" down to this one (hysteresis, as silero does).
    silence_threshold: float = Field(default=0.35, gt=0, lt=1)
    # Consecutive voiced time needed to declare speech started (rejects clicks and single noisy frames).
    speech_start_ms: int = Field(default=60, ge=FRAME_MS)
    # Audio kept from before speech start so the first syllable is not clipped.
    pre_roll_ms: int = Field(default=200, ge=0)
    # Silence after the last voiced frame that ends the turn.
    end_of_turn_silence_ms: int = Field(default=600, ge=100)
    # Silence after which ASR starts speculatively (thrown away if the caller resumes).
    speculative_pause_ms: int = Field(default=200, ge=FRAME_MS)
    # End the turn at the speculative pause (instead of waiting the full end-of-turn silence) when
    # the speculative transcript is a finished sentence: ends in . ? or ! and not on a word that
    # announces more ("and", "to", "my", "um"...). Saves ~250 ms on most turns; a caller who goes
    # on anyway barges in and is heard.
    early_end_on_complete: bool = True
    # ...but never before this much silence (a breath inside a sentence is shorter).
    early_end_min_silence_ms: int = Field(default=300, ge=FRAME_MS)
    # While a digit string is expected (an open phone or order number slot), callers pause between
    # groups ("555 ... 123 ... 4567") for 300-1000 ms: end the turn only after this much silence.
    # A complete number still ends early (300 ms, once the speculative transcript holds all the
    # digits), so only a caller who stops short waits this long for the read-back.
    digits_end_of_turn_silence_ms: int = Field(default=1500, ge=100)
    # Hard cut for a caller who never pauses.
    max_utterance_ms: int = Field(default=15000, ge=1000)
    # No speech at all for this long after listening starts -> NoInput (re-armed after each report).
    no_input_timeout_ms: int = Field(default=6000, ge=500)
    # While a prompt plays, the prompt pauses as soon as the caller makes this much sound (a lower bar
    # than speech start: Silero rates some onsets below 0.3 for ~250 ms, and pausing costs little
    # because a false barge-in resumes the prompt)...
    barge_in_onset_threshold: float = Field(default=0.15, gt=0, lt=1)
    barge_in_onset_ms: int = Field(default=40, ge=FRAME_MS)
    # ...and speech must last this long to count as a barge-in...
    barge_in_min_speech_ms: int = Field(default=400, ge=FRAME_MS)
    # ...and a shorter blip (cough, "mm-hm", a DTMF click) is declared false after this much silence.
    false_barge_in_silence_ms: int = Field(default=300, ge=FRAME_MS)
    # A false barge-in reported within this time of the blip lets the prompt resume where it paused;
    # later than that the caller should repeat the prompt from the start.
    false_barge_in_resume_window_ms: int = Field(default=1500, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> TurnSettings:
        if self.silence_threshold > self.speech_threshold:
            raise ValueError("silence_threshold must not be above speech_threshold")
        if self.speculative_pause_ms >= min(self.end_of_turn_silence_ms, self.digits_end_of_turn_silence_ms):
            raise ValueError("speculative_pause_ms must be shorter than end_of_turn_silence_ms")
        return self


def frames_for(ms: int) -> int:
    """A duration setting in whole frames (at least one)."""
    return max(1, ms // FRAME_MS)
