"""Place one real test call: dial Asterisk, speak a script of utterances / DTMF / pauses into
the call, listen, hang up, and report what went over the wire with monotonic timestamps."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ari_app.testcaller import audio
from ari_app.testcaller.rtp_peer import RtpPeer
from ari_app.testcaller.sdp import PT_PCMU, SdpMedia
from ari_app.testcaller.sip import SipCall, SipTimings, SipTransport

VOICED_DBFS = -40.0


@dataclass(frozen=True)
class Utterance:
    """Something the caller says: a sentence to synthesise, a WAV file, or 8 kHz int16 PCM."""

    text: str | None = None
    wav: str | Path | None = None
    pcm: np.ndarray | None = None
    snr_db: float | None = None  # add white noise at this SNR
    engine: str = "auto"  # flite | espeak-ng | auto
    voice: str | None = None  # the engine's voice (flite -voice, espeak-ng -v)

    def render(self) -> np.ndarray:
        given = [x is not None for x in (self.text, self.wav, self.pcm)]
        if sum(given) != 1:
            raise audio.AudioError("an Utterance needs exactly one of text=, wav= or pcm=")
        if self.text is not None:
            pcm = audio.synthesize(self.text, self.engine, voice=self.voice)
        elif self.wav is not None:
            pcm = audio.load_wav(self.wav)
        else:
            pcm = np.asarray(self.pcm, dtype=np.int16)
        return audio.add_noise(pcm, self.snr_db) if self.snr_db is not None else pcm

    @property
    def label(self) -> str:
        if self.text is not None:
            return self.text
        return str(self.wav) if self.wav is not None else "pcm"


@dataclass(frozen=True)
class Dtmf:
    digits: str
    gap_s: float = 0.1  # silence between digits


@dataclass(frozen=True)
class Silence:
    seconds: float


@dataclass(frozen=True)
class WaitForAgent:
    """Turn-taking: wait until the agent has spoken and then stayed quiet for quiet_s."""

    timeout_s: float = 15.0
    quiet_s: float = 0.8


@dataclass(frozen=True)
class Reply:
    """A reactive turn: wait for the agent as WaitForAgent does, then hand what it said (8 kHz PCM
    received since this step began) to ``decide``, which returns the caller's next steps, or None
    to hang up. A caller that listens is what tells a dialogue that converges from a lucky script."""

    decide: Callable[[np.ndarray], Awaitable[Sequence[Step] | None]]
    timeout_s: float = 20.0
    quiet_s: float = 1.0


Step = Utterance | Dtmf | Silence | WaitForAgent | Reply


@dataclass
class SentItem:
    kind: str  # speech | dtmf | silence | wait
    label: str
    start: float
    end: float
    last_voiced: float | None = None  # send time of the last voiced packet of a speech item
    interrupted: bool = False  # the call ended before this step finished


@dataclass
class Response:
    """How the agent answered one utterance: last voiced caller packet -> first voiced agent packet."""

    after: str
    caller_stopped: float
    agent_started: float | None

    @property
    def latency_s(self) -> float | None:
        return None if self.agent_started is None else self.agent_started - self.caller_stopped


@dataclass
class CallReport:
    target: str
    call_id: str
    sip: SipTimings
    remote_media: SdpMedia | None
    sent: list[SentItem]
    heard: list[tuple[float, float]]  # voiced spans received (monotonic arrival times)
    packets_sent: int
    packets_received: int
    rtp: RtpPeer = field(repr=False)

    @property
    def t0(self) -> float:
        return self.sip.invite_sent or 0.0

    def received_pcm(self) -> np.ndarray:
        return self.rtp.received_pcm()

    def responses(self, threshold_dbfs: float = VOICED_DBFS) -> list[Response]:
        out = []
        for item in self.sent:
            if item.kind == "speech" and item.last_voiced is not None:
                first = self.rtp.first_voiced_after(item.last_voiced, threshold_dbfs)
                out.append(Response(item.label, item.last_voiced, first))
        return out

    def to_dict(self) -> dict:
        """Everything as seconds since the INVITE was sent (JSON-friendly, for printing)."""

        def rel(t: float | None) -> float | None:
            return None if t is None else round(t - self.t0, 4)

        s = self.sip
        return {
            "target": self.target,
            "call_id": self.call_id,
            "sip": {
                "first_response": rel(s.first_response),
                "ringing": rel(s.ringing),
                "answered": rel(s.answered),
                "bye_sent": rel(s.bye_sent),
                "ended": rel(s.ended),
                "ended_by": s.ended_by,
                "final_status": s.final_status,
            },
            "sent": [
                {
                    "kind": i.kind,
                    "interrupted": i.interrupted,
                    "label": i.label,
                    "start": rel(i.start),
                    "end": rel(i.end),
                    "last_voiced": rel(i.last_voiced),
                }
                for i in self.sent
            ],
            "heard": [[rel(a), rel(b)] for a, b in self.heard],
            "responses": [
                {"after": r.after, "latency_s": None if r.latency_s is None else round(r.latency_s, 4)}
                for r in self.responses()
            ],
            "packets": {"sent": self.packets_sent, "received": self.packets_received},
        }


async def place_call(
    target: str = "1000",
    audio_script: Sequence[Step] = (),
    listen_s: float = 5.0,
    *,
    sip_host: str = "127.0.0.1",
    sip_port: int = 5060,
    local_host: str = "127.0.0.1",
    from_user: str = "caller",
    invite_timeout: float = 15.0,
    hangup: bool = True,
    extra_headers: Sequence[tuple[str, str]] = (),
) -> CallReport:
    """Dial ``target``, play ``audio_script``, listen ``listen_s`` more seconds, then BYE.

    Ends early (without error) if Asterisk hangs up. Raises CallRejected / SipTimeout / SipError
    if the call cannot be set up, AudioError if a step's audio cannot be made (before dialling).
    """
    rendered = [(step, step.render() if isinstance(step, Utterance) else None) for step in audio_script]
    transport = await SipTransport.open(local_host)
    rtp = RtpPeer(local_host)
    call: SipCall | None = None
    sent: list[SentItem] = []
    try:
        await rtp.open()
        call = SipCall(
            transport, target, remote=(sip_host, sip_port), from_user=from_user, extra_headers=extra_headers
        )
        call.dialog.on_remote_sdp = lambda m: rtp.set_remote(m.ip, m.port)
        media = await call.invite(local_host, rtp.local_port, timeout=invite_timeout)
        rtp.set_remote(media.ip, media.port)
        rtp.start()
        todo = deque(rendered)
        while todo:
            step, pcm = todo.popleft()
            started = time.monotonic()
            if isinstance(step, Reply):
                item = await _until_ended(_wait_for_agent(rtp, started, step), call.ended)
                if item is None:
                    break
                sent.append(SentItem("wait", "agent turn", started, time.monotonic()))
                nxt = await _until_ended(step.decide(rtp.received_pcm(since=started)), call.ended)
                if nxt is None:
                    break
                later = [
                    (s, await asyncio.to_thread(s.render) if isinstance(s, Utterance) else None) for s in nxt
                ]
                todo.extendleft(reversed(later))
                continue
            item = await _until_ended(_run_step(rtp, step, pcm), call.ended)
            if item is None:
                sent.append(SentItem(_kind(step), _label(step), started, time.monotonic(), interrupted=True))
                break
            sent.append(item)
        if listen_s > 0:
            await _until_ended(asyncio.sleep(listen_s), call.ended)
        if hangup:
            await call.bye()
        call.sync_end()
    finally:
        await rtp.close()
        if call is not None:
            call.close()
        transport.close()
    return CallReport(
        target,
        call.call_id,
        call.timings,
        call.remote_media,
        sent,
        rtp.voiced_spans(VOICED_DBFS),
        len(rtp.sent),
        len(rtp.received),
        rtp,
    )


def _kind(step: Step) -> str:
    kinds = {Utterance: "speech", Dtmf: "dtmf", Silence: "silence", WaitForAgent: "wait", Reply: "wait"}
    return kinds[type(step)]


def _label(step: Step) -> str:
    if isinstance(step, Utterance):
        return step.label
    if isinstance(step, Dtmf):
        return step.digits
    return f"{step.seconds:g}s" if isinstance(step, Silence) else "agent turn"


async def _run_step(rtp: RtpPeer, step: Step, pcm: np.ndarray | None) -> SentItem:
    if isinstance(step, Utterance):
        assert pcm is not None
        span = await rtp.play(pcm, step.label)
        voiced = [
            p.sent_at
            for p in rtp.sent
            if span.start <= p.sent_at <= span.end and p.payload_type == PT_PCMU and p.dbfs >= VOICED_DBFS
        ]
        return SentItem("speech", step.label, span.start, span.end, voiced[-1] if voiced else None)
    if isinstance(step, Dtmf):
        start = time.monotonic()
        for i, digit in enumerate(step.digits):
            if i:
                await asyncio.sleep(step.gap_s)
            await rtp.send_dtmf(digit)
        return SentItem("dtmf", step.digits, start, time.monotonic())
    if isinstance(step, Silence):
        start = time.monotonic()
        await asyncio.sleep(step.seconds)
        return SentItem("silence", f"{step.seconds:g}s", start, time.monotonic())
    start = time.monotonic()
    await _wait_for_agent(rtp, start, step)
    return SentItem("wait", "agent turn", start, time.monotonic())


async def _wait_for_agent(rtp: RtpPeer, since: float, step: WaitForAgent | Reply) -> bool:
    """True when the agent spoke and then stayed quiet; False on timeout (it said nothing)."""
    deadline = since + step.timeout_s
    while time.monotonic() < deadline:
        spans = [s for s in rtp.voiced_spans(VOICED_DBFS) if s[1] > since]
        if spans and time.monotonic() - spans[-1][1] >= step.quiet_s:
            return True
        await asyncio.sleep(0.05)
    return False


async def _until_ended(work: Awaitable, ended: asyncio.Event):
    """Run ``work`` unless the call ends first (then cancel it and return None)."""
    task = asyncio.ensure_future(work)
    waiter = asyncio.ensure_future(ended.wait())
    try:
        done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    if task in done:
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return None
