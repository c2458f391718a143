"""agent: one prompt being spoken, as a handle others operate on (LiveKit's ``SpeechHandle``).

The handle streams TTS into a buffer and plays it over our RTP path. The floor pauses it the
instant the caller makes a sound, resumes it (a little before where it stopped, or from the
start) after a false barge-in, or interrupts it for good; ``wait_for_playout()`` returns what was
played. A prompt that is not interruptible ignores pause and interrupt; only ``cancel()`` (the
call is over) stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from ari_app.media.constants import FRAME_BYTES
from ari_app.media.transport import MediaTransport

RESUME_BACKUP_FRAMES = 10  # resume 200 ms before where we stopped: the caller hears the words again


class SpeechFailed(Exception):
    """Synthesis of a prompt failed: the caller did not hear (all of) it."""


@dataclass(frozen=True)
class SpeakResult:
    interrupted: bool
    first_audio_at: float | None  # monotonic: first frame of this prompt on the wire
    barge_in_reaction_ms: float | None  # caller sound (wire time) -> our audio stopped
    frames_sent: int


class SpeechHandle:
    def __init__(
        self,
        media: MediaTransport,
        audio: AsyncIterator[bytes],
        *,
        interruptible: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interruptible = interruptible
        self._media = media
        self._clock = clock
        self._buf = bytearray()
        self._synth_done = asyncio.Event()
        self._grew = asyncio.Event()  # set whenever synthesis adds audio (or ends)
        self._wake = asyncio.Event()  # resume() or interrupt() while paused
        self._done = asyncio.Event()
        self._paused = False
        self._stop_requested = False  # our pause/interrupt stopped the current play() call
        self._from_start = False
        self._interrupted = False
        self._first_audio_at: float | None = None
        self._reaction_ms: float | None = None
        self._frames_sent = 0
        self._synth_error: BaseException | None = None
        self._starved_since: float | None = None  # playout waiting for audio synthesis has not made
        self._synth = asyncio.create_task(self._synthesize(audio), name="speech-synth")
        self._playout = asyncio.create_task(self._play(), name="speech-playout")

    # ------------------------------------------------------------------ operations
    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self, cause_at: float | None = None) -> None:
        """Stop the audio now, keep the place; ``cause_at`` (wire time) times the reaction."""
        if not self.interruptible or self.done or self._paused:
            return
        self._paused = True
        self._stop(cause_at)

    def resume(self, *, from_start: bool = False) -> None:
        if not self._paused or self.done:
            return
        self._paused, self._from_start = False, from_start
        self._wake.set()

    def interrupt(self, cause_at: float | None = None) -> None:
        """The caller has the floor: this prompt ends here."""
        if not self.interruptible or self.done:
            return
        self._interrupted = True
        if not self._paused:
            self._stop(cause_at)
        self._wake.set()

    def cancel(self) -> None:
        """The call is over: stop at once, whatever the prompt."""
        self._synth.cancel()
        self._playout.cancel()

    def starved_s(self, now: float) -> float | None:
        """How long playout has been waiting for synthesis (None: it is not waiting)."""
        return None if self._starved_since is None or self.done else now - self._starved_since

    async def wait_for_playout(self) -> SpeakResult:
        """What was played. Raises SpeechFailed when synthesis failed (dead air otherwise)."""
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(self._playout)
        if self._synth_error is not None:
            raise SpeechFailed(f"{type(self._synth_error).__name__}: {self._synth_error}")
        return SpeakResult(self._interrupted, self._first_audio_at, self._reaction_ms, self._frames_sent)

    async def wait_done(self) -> None:
        """Until the prompt has ended, however it ended (no result: see ``wait_for_playout``)."""
        await self._done.wait()

    # ------------------------------------------------------------------ machinery
    def _stop(self, cause_at: float | None) -> None:
        self._stop_requested = True
        if self._reaction_ms is None and cause_at is not None:
            self._reaction_ms = (self._clock() - cause_at) * 1000
        self._media.stop_playback()

    async def _synthesize(self, audio: AsyncIterator[bytes]) -> None:
        try:
            async for chunk in audio:
                self._buf.extend(chunk)
                self._grew.set()
        except Exception as e:  # kept for wait_for_playout: the caller must not get silence
            self._synth_error = e
        finally:
            self._synth_done.set()
            self._grew.set()

    async def _from(self, offset: int) -> AsyncIterator[bytes]:
        """The buffered audio from ``offset``, in whole frames while synthesis still runs."""
        pos = offset
        while True:
            if pos < len(self._buf):
                size = len(self._buf)
                end = size if self._synth_done.is_set() else size - (size - pos) % FRAME_BYTES
                if end > pos:
                    yield bytes(self._buf[pos:end])
                    pos = end
                    continue
            if self._synth_done.is_set() and pos >= len(self._buf):
                return
            self._grew.clear()
            self._starved_since = self._clock()
            try:
                await self._grew.wait()
            finally:
                self._starved_since = None

    async def _play(self) -> None:
        offset = 0
        try:
            while True:
                self._wake.clear()
                result = await self._media.play(self._from(offset), interruptible=self.interruptible)
                if self._first_audio_at is None:
                    self._first_audio_at = result.first_frame_at
                self._frames_sent += result.frames_sent
                stopped_by_us, self._stop_requested = self._stop_requested, False
                if self._interrupted or not result.stopped or not stopped_by_us:
                    return  # interrupted, played to the end, or the transport closed under us
                if self._paused:
                    await self._wake.wait()
                    if self._interrupted:
                        return
                played_to = offset + result.frames_sent * FRAME_BYTES
                offset = 0 if self._from_start else max(0, played_to - RESUME_BACKUP_FRAMES * FRAME_BYTES)
        finally:
            self._synth.cancel()
            self._done.set()
