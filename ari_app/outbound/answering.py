"""outbound: the conversation of a call we placed — first who answered, then the flow or a message.

Why a room of its own: an inbound caller always is a person who wants something; a callee may be
a voicemail box. A person gets the campaign's flow (the same voice agent inbound callers get); a
machine gets the campaign's message once its greeting is over (after the beep, or after the
greeting has gone quiet), and the call ends. A call taken over from a dead instance has been
through this already and goes straight to the agent.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable

import numpy as np
import structlog

from ari_app.calls.call import Call
from ari_app.dialog.templates import render
from ari_app.media.transport import AudioFrame
from ari_app.outbound.amd import AmdSettings, BeepDetector, GreetingDetector, Verdict
from ari_app.outbound.context import OutboundContext
from ari_app.speech.asr import Asr
from ari_app.speech.tts import Tts
from ari_app.speech.vad import Vad

log = structlog.get_logger(__name__)

ASTERISK_VERDICTS: dict[str, Verdict] = {"HUMAN": "human", "MACHINE": "machine", "NOTSURE": "unsure"}
GREETING_QUIET_S = 1.5  # a machine's greeting is over when it has been quiet this long
GREETING_WAIT_MAX_S = 30.0  # leave the message by then, beep or not
PRE_ROLL_FRAMES = 10  # audio kept before the first voiced frame, for the ASR of the first words


class AnsweringConversation:
    def __init__(self, agent: Callable[[Call], Awaitable[None]], vad_factory: Callable[[], Vad], asr: Asr,
                 tts: Tts, settings: AmdSettings | None = None) -> None:  # fmt: skip
        self.agent = agent
        self.vad_factory = vad_factory
        self.asr = asr
        self.tts = tts
        self.settings = settings or AmdSettings()

    async def __call__(self, call: Call) -> None:
        ctx = call.outbound
        if ctx is None or call.resumed:
            await self.agent(call)
            return
        ctx.answered_by = await self.who_answered(call, ctx)
        call.log.info("outbound.answered_by", verdict=ctx.answered_by, reason=ctx.amd_reason,
                      campaign=ctx.campaign, contact=ctx.contact_id)  # fmt: skip
        if ctx.answered_by == "machine":
            await self.leave_message(call, ctx)
            call.end_reason = "voicemail" if ctx.message_left else "machine"
            return
        await self.agent(call)

    async def who_answered(self, call: Call, ctx: OutboundContext) -> Verdict:
        if ctx.amd == "off":
            ctx.amd_reason = "detection off"
            return "human"
        if ctx.amd == "asterisk":
            status = (ctx.asterisk_verdict or "").split(",")[0].upper()
            ctx.amd_reason = f"AMD() said {ctx.asterisk_verdict or 'nothing'}"
            return ASTERISK_VERDICTS.get(status, "unsure")
        assert call.media is not None
        verdict, reason = await detect(call.media.frames(), self.vad_factory(), self.asr, self.settings)
        ctx.amd_reason = reason
        return verdict

    async def leave_message(self, call: Call, ctx: OutboundContext) -> None:
        """Wait for the beep (or the greeting to go quiet), then say the message once."""
        if not ctx.voicemail:
            return
        assert call.media is not None
        waited = await wait_for_beep(call.media.frames(), self.vad_factory())
        call.log.info("outbound.leaving_message", after=waited)
        text = render(ctx.voicemail, ctx.slots)  # the flows' templates: {appt_date:date} reads well
        result = await call.media.play(self.tts.synthesize(text), interruptible=False)
        ctx.message_left = result.frames_sent > 0 and not result.stopped


async def detect(frames: AsyncIterator[AudioFrame], vad: Vad, asr: Asr,
                 settings: AmdSettings) -> tuple[Verdict, str]:  # fmt: skip
    """Timing decides; a short first utterance is also read by the ASR, because a terse
    greeting ("Smith, leave a message") is short too."""
    det = GreetingDetector(settings)
    heard: list[bytes] = []
    async for frame in frames:
        prob = vad.speech_probability(frame.pcm)
        if det.speech_start is None:
            heard = [*heard[-PRE_ROLL_FRAMES + 1 :], frame.pcm]
        else:
            heard.append(frame.pcm)
        if det.feed(prob) is not None:
            break
    verdict = det.verdict or "unsure"
    if verdict == "human" and heard:
        words = (await asr.transcribe(b"".join(heard))).text
        det.refine(words)
        verdict = det.verdict or verdict
    return verdict, det.reason or "the line closed"


async def wait_for_beep(frames: AsyncIterator[AudioFrame], vad: Vad) -> str:
    """Returns what ended the wait: "beep", "quiet" (greeting over, no beep) or "timeout"."""
    beep = BeepDetector()
    t0 = last_voice = time.monotonic()
    async for frame in frames:
        now = frame.received_at
        if beep.feed(frame.pcm):
            return "beep"
        if beep.run == 0 and vad.speech_probability(frame.pcm) >= 0.5:
            last_voice = now
        if not beep.heard and now - last_voice >= GREETING_QUIET_S and _quiet(frame.pcm):
            return "quiet"
        if now - t0 > GREETING_WAIT_MAX_S:
            return "timeout"
    return "line closed"


def _quiet(pcm: bytes) -> bool:
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
    return float(np.sqrt(np.mean(x * x))) < 300.0 if x.size else True
