"""Our side of a live call: speaks text through our own RTP path (so timing and barge-in are
ours), streaming TTS clause by clause, and handles barge-in:

- the caller starts making sound -> the prompt stops within a frame or two (reaction time kept);
- it was real speech (or a key press) -> the prompt stays stopped, the caller has the floor;
- it was a blip (cough, "mm-hm") -> the prompt resumes where it stopped, or repeats if too late;
- prompts marked not interruptible (legal disclosures) are never stopped.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

from ari_app.agent.listener import Listener, ListenerEvent
from ari_app.media.transport import MediaTransport
from ari_app.speech.turn import BargeIn, FalseBargeIn, PossibleBargeIn

FRAME_BYTES = 320
RESUME_BACKUP_FRAMES = 10  # resume 200 ms before where we stopped: the caller hears the words again


@dataclass
class SpeakResult:
    interrupted: bool
    first_audio_at: float | None  # monotonic: first frame of this prompt on the wire
    barge_in_reaction_ms: float | None  # caller sound start -> our audio stopped
    frames_sent: int


class Speaker:
    def __init__(self, media: MediaTransport, tts, listener: Listener) -> None:
        self.media = media
        self.tts = tts
        self.listener = listener
        self.held: deque[ListenerEvent] = deque()  # non-barge-in events that arrived while speaking

    async def say(self, text: str, *, interruptible: bool = True) -> SpeakResult:
        buf = bytearray()
        done_synth = asyncio.Event()
        grew = asyncio.Event()  # set whenever synthesis adds audio (or ends)

        async def synth() -> None:
            try:
                async for chunk in self.tts.synthesize(text):
                    buf.extend(chunk)
                    grew.set()
            finally:
                done_synth.set()
                grew.set()

        synth_task = asyncio.create_task(synth())

        async def from_buffer(offset: int) -> AsyncIterator[bytes]:
            pos = offset
            while True:
                if pos < len(buf):
                    end = len(buf) - (len(buf) - pos) % FRAME_BYTES if not done_synth.is_set() else len(buf)
                    if end > pos:
                        yield bytes(buf[pos:end])
                        pos = end
                        continue
                if done_synth.is_set() and pos >= len(buf):
                    return
                grew.clear()
                await grew.wait()

        self.listener.watch_barge_in(interruptible)
        self.listener.set_speaking(True)
        first_audio: float | None = None
        reaction: float | None = None
        sent_total = 0
        offset = 0
        try:
            while True:
                play = asyncio.create_task(self.media.play(from_buffer(offset), interruptible=interruptible))
                outcome = await self._until_done_or_barge(play, interruptible)
                result = await play
                if first_audio is None:
                    first_audio = result.first_frame_at
                sent_total += result.frames_sent
                if outcome is None:
                    return SpeakResult(False, first_audio, reaction, sent_total)
                stopped_at, ev = outcome
                if reaction is None:
                    reaction = (stopped_at - ev.at) * 1000
                resumed = await self._after_possible_barge_in(ev)
                if resumed is None:  # real barge-in: the caller has the floor
                    return SpeakResult(True, first_audio, reaction, sent_total)
                offset = (
                    max(0, offset + (result.frames_sent - RESUME_BACKUP_FRAMES) * FRAME_BYTES)
                    if resumed
                    else 0
                )
                self.listener.watch_barge_in(True)
        finally:
            self.listener.watch_barge_in(False)
            self.listener.set_speaking(False)
            if not synth_task.done():
                synth_task.cancel()

    async def _until_done_or_barge(
        self, play: asyncio.Task, interruptible: bool
    ) -> tuple[float, ListenerEvent] | None:
        """Wait for the prompt to finish; on caller sound stop it at once and say when."""
        while True:
            getter = asyncio.create_task(self.listener.events.get())
            done, _ = await asyncio.wait({play, getter}, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                return None
            ev = getter.result()
            if interruptible and isinstance(ev, PossibleBargeIn | BargeIn):
                self.media.stop_playback()
                return time.monotonic(), ev
            if not isinstance(ev, PossibleBargeIn | FalseBargeIn | BargeIn):
                self.held.append(ev)

    async def _after_possible_barge_in(self, ev: ListenerEvent) -> bool | None:
        """None: real barge-in. True: resume where we were. False: repeat from the start."""
        if isinstance(ev, BargeIn):
            return None
        while True:
            nxt = await self.listener.events.get()
            if isinstance(nxt, BargeIn):
                return None
            if isinstance(nxt, FalseBargeIn):
                return nxt.resume
            if not isinstance(nxt, PossibleBargeIn):
                self.held.append(nxt)
                if not isinstance(nxt, FalseBargeIn):
                    return None  # a whole turn or key press arrived: the caller has the floor
