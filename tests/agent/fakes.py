"""The agent room's in-process harness: one fake per stage, driving a real VoiceAgent.

Everything runs in virtual time. ``FakeLine`` is the MediaTransport: each ``tick()`` is 20 ms on
the wire, in which one caller frame arrives (stamped with the virtual arrival time) and one frame
of the playing prompt goes out. Frames carry what they are in their bytes, so the fakes need no
side channel: a caller frame is ``[probability*100, utterance id]`` repeated, an agent frame
``[0xA5, prompt id]``. ``ScriptedVad`` reads the probability back, ``FakeAsr`` the utterance ids
(after a delay counted in ticks), ``FakeTts`` makes N frames per prompt.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from ari_app.calls.call import CallInfo, Digit
from ari_app.media.constants import FRAME_BYTES, FRAME_INTERVAL
from ari_app.media.framing import pcm_frames
from ari_app.media.transport import AudioFrame, MediaStats, PlayResult
from ari_app.speech.asr import Transcript
from ari_app.speech.tts import TtsIdentity

AGENT_MARK = 0xA5
SETTLE_STEPS = 30  # event-loop passes between ticks: every task reacts before the next frame


def caller_frame(prob: float, utterance: int = 0) -> bytes:
    return bytes([round(prob * 100), utterance]) * (FRAME_BYTES // 2)


@dataclass
class Played:
    prompt: int
    frames: list[int] = field(default_factory=list)  # tick of every frame sent


class FakeLine:
    """A MediaTransport in virtual time, and the caller's mouth and ear."""

    local_port = 40000

    def __init__(self) -> None:
        self.stats = MediaStats()
        self.tick_no = 0
        self._inbound: deque[bytes] = deque()  # scripted caller frames; silence when empty
        self._frames: asyncio.Queue[AudioFrame | None] = asyncio.Queue()
        self._play_slot: asyncio.Future[None] | None = None
        self._stop = False
        self._playing_interruptible = False
        self.closed = False
        self.played: list[Played] = []  # one entry per play() call, in order
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    # ------------------------------------------------------------------ the clock
    def now(self) -> float:
        return self.tick_no * FRAME_INTERVAL

    async def tick(self) -> None:
        self.tick_no += 1
        if not self.closed:
            pcm = self._inbound.popleft() if self._inbound else caller_frame(0.0)
            self._frames.put_nowait(AudioFrame(pcm, received_at=self.now(), sequence=self.tick_no))
        if self._play_slot is not None and not self._play_slot.done():
            self._play_slot.set_result(None)
        for due, fut in list(self._waiters):
            if due <= self.tick_no and not fut.done():
                fut.set_result(None)
        self._waiters = [(d, f) for d, f in self._waiters if not f.done()]
        for _ in range(SETTLE_STEPS):
            await asyncio.sleep(0)

    async def run_until(self, done: Callable[[], bool], max_ticks: int = 3000) -> None:
        for _ in range(max_ticks):
            if done():
                return
            await self.tick()
        raise AssertionError(f"not done after {max_ticks} ticks ({max_ticks * 20 / 1000:.0f} s of call)")

    async def sleep_ticks(self, n: int) -> None:
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append((self.tick_no + n, fut))
        await fut

    # ------------------------------------------------------------------ the caller
    def speak(self, ms: int, utterance: int, prob: float = 0.9, lead_silence_ms: int = 0) -> None:
        self._inbound.extend(caller_frame(0.0) for _ in range(lead_silence_ms // 20))
        self._inbound.extend(caller_frame(prob, utterance) for _ in range(ms // 20))

    def hang_up(self) -> None:
        self.closed = True
        self._frames.put_nowait(None)
        self.stop_playback()
        self._stop = True

    @property
    def agent_talking(self) -> bool:
        return self._play_slot is not None

    # ------------------------------------------------------------------ MediaTransport
    async def frames(self) -> AsyncIterator[AudioFrame]:
        while (frame := await self._frames.get()) is not None:
            yield frame

    async def play(self, pcm: bytes | AsyncIterator[bytes], *, interruptible: bool = True) -> PlayResult:
        self._stop, self._playing_interruptible = False, interruptible
        entry: Played | None = None
        sent, first_at = 0, None
        try:
            async for frame in pcm_frames(pcm):
                if self._stop or self.closed:
                    break
                self._play_slot = asyncio.get_running_loop().create_future()
                await self._play_slot
                if self._stop or self.closed:
                    break
                if entry is None:
                    entry = Played(frame[1] if frame[0] == AGENT_MARK else -1)
                    self.played.append(entry)
                    first_at = self.now()
                entry.frames.append(self.tick_no)
                sent += 1
        finally:
            self._play_slot = None
        return PlayResult(sent, stopped=self._stop or self.closed, first_frame_at=first_at)

    def stop_playback(self) -> None:
        if self._playing_interruptible or self.closed:
            self._stop = True

    @property
    def playing(self) -> bool:
        return self._play_slot is not None

    async def close(self) -> None:
        if not self.closed:
            self.hang_up()


class ScriptedVad:
    name = "scripted"

    def speech_probability(self, frame: bytes) -> float:
        return frame[0] / 100 if frame[0] <= 100 else 0.0

    def reset(self) -> None:
        pass


class FakeAsr:
    """Transcribes the utterance ids found in the audio; takes ``delay_ticks`` of virtual time."""

    name = "fake-asr"

    def __init__(self, line: FakeLine, texts: dict[int, str], delay_ticks: int = 5) -> None:
        self.line, self.texts, self.delay_ticks = line, texts, delay_ticks
        self.calls = 0
        self.fail_next = False
        self.expectations: list[object] = []

    async def transcribe(
        self, pcm8k: bytes, expect: object = None, *, speculative: bool = False
    ) -> Transcript:
        self.calls += 1
        self.expectations.append(expect)
        await self.line.sleep_ticks(self.delay_ticks)
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("ASR engine crashed")
        ids = sorted({pcm8k[i + 1] for i in range(0, len(pcm8k), FRAME_BYTES) if pcm8k[i] >= 50})
        text = " ".join(self.texts[i] for i in ids if i in self.texts)
        return Transcript(text, 0.9, len(pcm8k) // 16, self.name)


class FakeTts:
    """``frames_per_word`` 20 ms frames per word; remembers every text asked for."""

    identity = TtsIdentity("fake", "0", "fake", 1.0, None)

    def __init__(self, frames_per_word: int = 10) -> None:
        self.frames_per_word = frames_per_word
        self.texts: list[str] = []

    def prompt_id(self, text: str) -> int:
        return self.texts.index(text)

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        self.texts.append(text)
        mark = bytes([AGENT_MARK, len(self.texts) - 1]) * (FRAME_BYTES // 2)
        for _word in text.split():
            yield mark * self.frames_per_word
            await asyncio.sleep(0)


@dataclass
class _Channel:
    id: str = "caller-1"


class FakeCall:
    """What a VoiceAgent uses of a ``Call``."""

    def __init__(self, line: FakeLine) -> None:
        self.media = line
        self.channel = _Channel()
        self.info = CallInfo("sess-1", "caller-1", "5551234567", "Test Caller", "100", [])
        self.digits: asyncio.Queue[Digit] = asyncio.Queue()
        self.bridge_id: str | None = "bridge-1"
        self.media_channel_id: str | None = "media-1"
        self.resumed = False
        self.resume_state: dict | None = None
        self.resume_transfer: dict | None = None
        self.rejoined = False
        self.agent_channel_id: str | None = None
        self.detached = False
        self.outbound = None  # an inbound call
        self.end_reason = "unknown"
        self.left = asyncio.Event()
        self.hung_up = asyncio.Event()
        self.failed_over: list[str] = []  # faults handed to the fallback (see fail_over in tests)

    def press(self, keys: str, at: float) -> None:
        for k in keys:
            self.digits.put_nowait(Digit(k, 100, at))

    async def wait_until_either_leaves(self) -> None:
        await self.left.wait()
