"""Reading an agent's behaviour off a test call's wire record (caller side, monotonic times).

The caller's "end of speech" is taken from the clean rendering of what it played (so noise mixed
in at a given SNR does not move it), and the agent's audio from every voiced packet received.
"""

from __future__ import annotations

import numpy as np

from ari_app.media.constants import FRAME_SAMPLES
from ari_app.testcaller.caller import VOICED_DBFS, CallReport, SentItem
from ari_app.testcaller.rtp_peer import frame_dbfs


def voiced_frames(pcm: np.ndarray, threshold_dbfs: float = VOICED_DBFS) -> np.ndarray:
    """Indices of the 20 ms frames of ``pcm`` at or above the threshold."""
    n = len(pcm) // FRAME_SAMPLES
    frames = np.asarray(pcm[: n * FRAME_SAMPLES], dtype=np.int16).reshape(n, FRAME_SAMPLES)
    return np.array([i for i, f in enumerate(frames) if frame_dbfs(f) >= threshold_dbfs], dtype=int)


def trim(pcm: np.ndarray, keep_s: float = 0.1) -> np.ndarray:
    """Cut leading and trailing silence down to ``keep_s``."""
    v = voiced_frames(pcm)
    if v.size == 0:
        return pcm
    keep = int(keep_s * 8000)
    a = max(0, v[0] * FRAME_SAMPLES - keep)
    b = min(len(pcm), (v[-1] + 1) * FRAME_SAMPLES + keep)
    return pcm[a:b]


def sent_times(report: CallReport, item: SentItem) -> list[float]:
    """Send times of the audio packets of one played step, in order."""
    return [
        p.sent_at
        for p in report.rtp.sent
        if item.start <= p.sent_at <= item.end and p.payload_type == 0 and p.label == item.label
    ]


def frame_sent_at(report: CallReport, item: SentItem, frame: int) -> float | None:
    times = sent_times(report, item)
    return times[frame] if 0 <= frame < len(times) else None


def agent_voiced(report: CallReport, threshold_dbfs: float = VOICED_DBFS) -> np.ndarray:
    """Arrival times of every voiced packet the caller received from the agent."""
    return np.array(
        [p.arrival for p in report.rtp.received if p.pcm is not None and p.dbfs >= threshold_dbfs]
    )


def first_after(times: np.ndarray, t: float) -> float | None:
    later = times[times > t]
    return float(later[0]) if later.size else None


def any_between(times: np.ndarray, a: float, b: float) -> bool:
    return bool(((times > a) & (times <= b)).any())


def audio_stop_after(times: np.ndarray, t: float, quiet_s: float = 0.4) -> float | None:
    """Arrival of the last voiced agent packet after ``t`` that is followed by ``quiet_s`` of quiet
    (t itself if the agent was already quiet); None if the agent never went quiet."""
    later = times[times > t]
    if later.size == 0:
        return t
    prev = t
    for x in later:
        if x - prev >= quiet_s:
            return prev
        prev = float(x)
    return prev  # talked until the end of the record


def agent_packets(report: CallReport) -> np.ndarray:
    """Arrival times of every audio packet from the agent, voiced or not."""
    return np.array([p.arrival for p in report.rtp.received if p.pcm is not None])


def stream_stop_after(
    report: CallReport, t: float, gap_s: float = 0.1, horizon_s: float = 1.5
) -> float | None:
    """When the agent's packet stream stopped after ``t`` (our transport sends nothing between
    prompts, and a prompt's own pauses are sent as silence): the last arrival before a gap of
    ``gap_s``. None if the stream ran on for ``horizon_s`` (the prompt was not stopped)."""
    times = agent_packets(report)
    prev = t
    for x in times[times > t]:
        if x - prev >= gap_s:
            return prev
        if x - t > horizon_s:
            return None
        prev = float(x)
    return prev
