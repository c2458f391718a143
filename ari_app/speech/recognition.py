"""speech: turning a live frame stream into transcribed caller turns.

``TurnTaker`` drives the endpointer and runs ASR speculatively at the first pause, so the
transcript is usually ready the moment the end-of-turn silence has elapsed (or earlier, when the
speculative transcript reads as a finished sentence). Frames arrive as ``AudioFrame`` with their
RTP arrival time, and that wire time is what "end of speech" means in every turn it reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from ari_app import stage_cpu
from ari_app.media.transport import AudioFrame
from ari_app.speech.audio import pcm_ms
from ari_app.speech.endpointing import (
    Endpointer,
    NoInput,
    SpeculativePause,
    SpeechResumed,
    SpeechStarted,
    TurnEnded,
    TurnEvent,
)
from ari_app.speech.expectation import Expectation
from ari_app.speech.scheduler import DecodeDropped
from ari_app.speech.turn import TurnSettings

if TYPE_CHECKING:
    from ari_app.speech.asr import Asr, Transcript
    from ari_app.speech.vad import Vad

log = logging.getLogger(__name__)


# Words a sentence does not end on: a pause after them is a mid-sentence pause.
_CONTINUES = frozenset(
    "and but or so because if then that to of for with at in on my your our the a an is are was "
    "were i i'm it's um uh er erm like also plus which who when where what".split()
)


_DIGIT_WORDS = re.compile(r"\b(?:zero|oh|one|two|three|four|five|six|seven|eight|nine)\b", re.I)
_MULTIPLIERS = re.compile(r"\b(double|triple)\b", re.I)


def count_digits(text: str) -> int:
    """Digits in a transcript, however Whisper wrote them ("555-1234", "five five", "double 5")."""
    return (
        sum(c.isdigit() for c in text)
        + len(_DIGIT_WORDS.findall(text))
        + sum(2 if m.lower() == "triple" else 1 for m in _MULTIPLIERS.findall(text))
    )


# A modal or "do" followed by its subject ends no sentence of three words or more: the main verb
# is still to come ("What time do you ... open", "When can I ... come in"). Whisper still puts a
# question mark after the pause. Two words ("Can you?", "Do you?") may be a whole reply.
_AUX_THEN_SUBJECT = re.compile(
    r"\b(?:do|does|did|can|could|would|will|should|shall|may|might)\s+(?:i|you|we|they|he|she)$"
)


def looks_complete(text: str) -> bool:
    """Heuristic end-of-sentence test on an ASR transcript (Whisper punctuates)."""
    t = text.strip()
    if not t or t[-1] not in ".?!" or t.endswith("..."):
        return False
    words = t.rstrip(".?!").lower().replace(",", " ").split()
    if len(words) >= 3 and _AUX_THEN_SUBJECT.search(" ".join(words)):
        return False
    return bool(words) and words[-1] not in _CONTINUES


@dataclass(frozen=True)
class UserTurn:
    transcript: Transcript
    audio_ms: int
    end_of_speech_at: float  # arrival time (monotonic, from the wire) of the last voiced frame
    transcript_ready_at: float  # monotonic time the transcript was available
    speculative_hit: bool  # the transcript came from the speculative ASR run
    reason: Literal["silence", "max_length", "early"] = "silence"

    @property
    def latency_ms(self) -> float:
        """End of speech to transcript: what the caller feels as the agent's thinking pause."""
        return (self.transcript_ready_at - self.end_of_speech_at) * 1000


@dataclass
class _Speculation:
    audio: bytes
    task: asyncio.Task[Transcript] = field(repr=False)


RecognitionEvent = SpeechStarted | UserTurn | NoInput


class TurnTaker:
    """Turns frames (with their VAD probability) into caller turns, speech starts and NoInput.

    Empty transcripts (noise that fooled the VAD) are not reported; listening simply continues.
    ``clock`` only stamps when a transcript became ready; everything about the caller's speech is
    stamped with the frames' own arrival time.
    """

    def __init__(
        self,
        asr: Asr,
        settings: TurnSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.asr = asr
        self.settings = settings or TurnSettings()
        self.endpointer = Endpointer(self.settings)
        self.clock = clock
        self._speculation: _Speculation | None = None
        self._expect: Expectation | None = None

    def expect(self, expectation: Expectation | None) -> None:
        """What the open question expects (None: anything). A digit string: wait through the
        pauses between digit groups and never end the turn early on a partial number. Every
        transcription from now on is told (biasing, several hypotheses)."""
        self._expect = expectation
        s = self.settings
        digits = expectation is not None and expectation.digits
        self.endpointer.set_end_of_turn_silence(
            s.digits_end_of_turn_silence_ms if digits else s.end_of_turn_silence_ms
        )

    async def push(self, frame: AudioFrame, prob: float) -> list[RecognitionEvent]:
        """One frame in; what it completed out (awaits the final ASR when a turn ends)."""
        out: list[RecognitionEvent] = []
        with stage_cpu.measured("endpointing"):
            events = self.endpointer.feed(frame.pcm, prob, frame.received_at)
        for event in events:
            result = await self._handle(event)
            if result is not None:
                out.append(result)
        with stage_cpu.measured("endpointing"):
            early = self._early_turn()
        if early is not None:
            out.append(early)
        return out

    def restart_no_input_timer(self) -> None:
        self.endpointer.restart_no_input_timer()

    async def close(self) -> None:
        """Stop waiting for a speculative transcription still running."""
        await self._drop_speculation()

    async def turns(self, frames: AsyncIterator[AudioFrame], vad: Vad) -> AsyncIterator[UserTurn | NoInput]:
        """Standalone use (tests, benchmarks): run ``vad`` on each frame and yield the turns."""
        try:
            async for frame in frames:
                for event in await self.push(frame, vad.speech_probability(frame.pcm)):
                    if not isinstance(event, SpeechStarted):
                        yield event
        finally:
            await self.close()

    async def _handle(self, event: TurnEvent) -> RecognitionEvent | None:
        if isinstance(event, NoInput | SpeechStarted):
            return event
        if isinstance(event, SpeculativePause):
            await self._drop_speculation()
            task = asyncio.create_task(
                self.asr.transcribe(event.audio, self._expect, speculative=True), name="speculative-asr"
            )
            self._speculation = _Speculation(event.audio, task)
        elif isinstance(event, SpeechResumed):
            await self._drop_speculation()
        elif isinstance(event, TurnEnded):
            return await self._finish(event)
        return None

    async def _finish(self, ended: TurnEnded) -> UserTurn | None:
        spec, self._speculation = self._speculation, None
        hit = spec is not None and spec.audio == ended.audio
        transcript = None
        if spec is not None and hit:
            with contextlib.suppress(DecodeDropped):  # the scheduler dropped it as stale
                transcript = await spec.task
        elif spec is not None:
            await _cancel(spec.task)
        if transcript is None:
            hit = False
            transcript = await self.asr.transcribe(ended.audio, self._expect)
        ready = self.clock()
        if not transcript.text.strip():
            log.debug("turn of %d ms had no words; still listening", pcm_ms(ended.audio))
            return None
        return UserTurn(
            transcript=transcript,
            audio_ms=pcm_ms(ended.audio),
            end_of_speech_at=ended.end_of_speech_at,
            transcript_ready_at=ready,
            speculative_hit=hit,
            reason=ended.reason,
        )

    def _early_turn(self) -> UserTurn | None:
        """The speculative transcript is in and reads as a finished sentence: end the turn now."""
        spec = self._speculation
        if (
            spec is None
            or not spec.task.done()
            or not self.settings.early_end_on_complete
            or not self.endpointer.in_speech
            or spec.task.cancelled()
            or spec.task.exception() is not None
        ):
            return None
        if self.endpointer.silence_ms < self.settings.early_end_min_silence_ms:
            return None
        transcript = spec.task.result()
        if self._expect is not None and self._expect.digits:
            if count_digits(transcript.text) < self._expect.digits:
                return None
        elif not looks_complete(transcript.text):
            return None
        self._speculation = None
        end_of_speech = self.endpointer.last_voiced_at
        self.endpointer.reset()
        return UserTurn(
            transcript=transcript,
            audio_ms=pcm_ms(spec.audio),
            end_of_speech_at=end_of_speech,
            transcript_ready_at=self.clock(),
            speculative_hit=True,
            reason="early",
        )

    async def _drop_speculation(self) -> None:
        spec, self._speculation = self._speculation, None
        if spec is not None:
            await _cancel(spec.task)


async def _cancel(task: asyncio.Task[Transcript]) -> None:
    # The executor thread under a cancelled transcription finishes on its own; we just stop waiting.
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
