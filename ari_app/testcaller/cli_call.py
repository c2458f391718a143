"""``ari-app call``: one real SIP test call against the running agent, and what the agent said.

The caller waits for the greeting, says the sentence (or plays the WAV), waits for the agent's
answer and listens a few seconds more. Each voiced stretch the agent sent is transcribed with
the configured ASR and printed with when it started (seconds after the INVITE) and, for the
answer to the caller, the latency on the wire (caller's last voiced packet -> agent's first).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ari_app.config import Settings
from ari_app.testcaller.audio import AudioError
from ari_app.testcaller.caller import CallReport, Utterance, WaitForAgent, place_call
from ari_app.testcaller.sip_dialog import CallRejected, SipError, SipTimeout

SPAN_PAD_S = 0.15  # audio kept either side of a voiced span, so word edges are not clipped
MIN_SPAN_S = 0.2  # shorter blips (a click, a breath) are not worth transcribing
LINE_GAP_S = 0.8  # a longer pause starts a new line (the caller's WaitForAgent uses the same)


class CallFailed(Exception):
    """The test call could not be made; the message says why and what to do."""


@dataclass
class AgentLine:
    start_s: float  # since the INVITE was sent
    end_s: float
    text: str
    latency_s: float | None = None  # set on the line that answered the caller


@dataclass
class CallTranscript:
    target: str
    said: str
    answered_s: float | None
    said_at_s: float | None
    lines: list[AgentLine] = field(default_factory=list)
    ended_by: str | None = None

    def format(self) -> str:
        out = [
            f"call to {self.target}"
            + (f", answered after {self.answered_s:.2f} s" if self.answered_s is not None else "")
        ]
        rows: list[tuple[float, str]] = [(ln.start_s, _agent_row(ln)) for ln in self.lines]
        if self.said_at_s is not None:
            rows.append((self.said_at_s, f"{self.said_at_s:6.2f} s  caller: {self.said}"))
        out += [row for _, row in sorted(rows, key=lambda r: r[0])]
        if not self.lines:
            out.append("        (the agent said nothing)")
        if self.ended_by == "remote":
            out.append("the agent hung up")
        return "\n".join(out)


def _agent_row(line: AgentLine) -> str:
    row = f"{line.start_s:6.2f} s  agent:  {line.text or '(unintelligible)'}"
    if line.latency_s is not None:
        row += f"   [answered {line.latency_s:.2f} s after the caller stopped]"
    return row


def span_pcm(report: CallReport, start: float, end: float, pad_s: float = SPAN_PAD_S) -> np.ndarray:
    """The received audio (8 kHz int16) that arrived between start and end (monotonic), padded."""
    parts = [
        p.pcm for p in report.rtp.received if p.pcm is not None and start - pad_s <= p.arrival <= end + pad_s
    ]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)


def merge_spans(spans: list[tuple[float, float]], max_gap_s: float = LINE_GAP_S) -> list[tuple[float, float]]:
    """Voiced spans closer than max_gap_s are one line (the pause between two sentences)."""
    merged: list[tuple[float, float]] = []
    for start, end in spans:
        if merged and start - merged[-1][1] <= max_gap_s:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


async def transcribe_agent(report: CallReport, asr: Any) -> list[AgentLine]:
    """Every line the agent said, transcribed, with the wire latency on the one that answered."""
    answers = [(r.agent_started, r.latency_s) for r in report.responses() if r.agent_started is not None]
    lines = []
    for start, end in merge_spans(report.heard):
        latency = next((lat for t, lat in answers if start <= t <= end), None)
        if end - start < MIN_SPAN_S and latency is None:
            continue
        pcm = span_pcm(report, start, end)
        text = (await asr.transcribe(pcm.tobytes())).text.strip() if pcm.size else ""
        lines.append(AgentLine(start - report.t0, end - report.t0, text, latency))
    return lines


async def run_call(
    settings: Settings,
    sentence: str | None = None,
    wav: Path | None = None,
    *,
    target: str | None = None,
    listen_s: float = 8.0,
    asr: Any = None,
    greeting_timeout_s: float = 15.0,
) -> CallTranscript:
    """Place the call and transcribe the agent. Raises CallFailed with a message for the admin."""
    if sentence is None and wav is None:
        raise CallFailed("nothing to say: give a sentence or --wav FILE")
    if sentence is not None and wav is not None:
        raise CallFailed("give a sentence or --wav FILE, not both")
    target = target or settings.stack.extension
    utterance = Utterance(text=sentence) if sentence is not None else Utterance(wav=wav)
    script = [WaitForAgent(timeout_s=greeting_timeout_s), utterance, WaitForAgent(timeout_s=15.0)]
    host, port = settings.stack.bind, settings.stack.sip_port
    try:
        report = await place_call(target, script, listen_s, sip_host=host, sip_port=port)
    except CallRejected as e:
        if e.status == 603:
            raise CallFailed("no agent is running: start `ari-app serve`") from None
        raise CallFailed(f"{e} (is {target} the agent's extension?)") from None
    except SipTimeout:
        raise CallFailed(
            f"nothing answers SIP on {host}:{port}: is Asterisk running? (`ari-app stack up`)"
        ) from None
    except (SipError, AudioError, OSError) as e:
        raise CallFailed(str(e)) from None
    if asr is None:
        from ari_app.speech.asr import make_asr

        asr = make_asr(settings.speech.asr, settings.speech.cache_dir)
    speech = next((i for i in report.sent if i.kind == "speech"), None)
    return CallTranscript(
        target=target,
        said=sentence if sentence is not None else str(wav),
        answered_s=None if report.sip.answered is None else report.sip.answered - report.t0,
        said_at_s=None if speech is None else speech.start - report.t0,
        lines=await transcribe_agent(report, asr),
        ended_by=report.sip.ended_by,
    )
