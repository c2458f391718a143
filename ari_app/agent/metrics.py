"""Prometheus metrics of live calls: the per-turn timeline and barge-in reaction
(exposed by the web app's /metrics next to the session store's)."""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Gauge, Histogram

_MS_BUCKETS = (25, 50, 100, 150, 200, 300, 400, 500, 700, 1000, 1500, 2000, 3000, 5000)

TURN_ASR_MS = Histogram(
    "iva_turn_transcript_ms", "End of caller speech -> transcript ready (ms)", buckets=_MS_BUCKETS
)
TURN_DECIDE_MS = Histogram("iva_turn_decide_ms", "Transcript -> reply decided (ms)", buckets=_MS_BUCKETS)
TURN_FIRST_AUDIO_MS = Histogram(
    "iva_turn_first_audio_ms",
    "End of caller speech -> first agent audio frame sent (ms)",
    buckets=_MS_BUCKETS,
)
BARGE_IN_MS = Histogram(
    "iva_barge_in_reaction_ms", "Caller sound start -> our audio stopped (ms)", buckets=_MS_BUCKETS
)
SPECULATIVE = Counter(
    "iva_turn_speculative_asr", "Turns by whether the speculative ASR result was used", ["hit"]
)
TURNS = Counter("iva_turns", "Caller turns by kind", ["input"])
ACTIVE_CALLS = Gauge("iva_active_calls", "Calls this instance is driving")


class AgentMetrics:
    """Records one TurnMetrics (ari_app.agent.voice) into the histograms above."""

    def observe(self, m: Any) -> None:
        TURNS.labels(m.input).inc()
        if m.asr_ms is not None:
            TURN_ASR_MS.observe(m.asr_ms)
        if m.decide_ms is not None:
            TURN_DECIDE_MS.observe(m.decide_ms)
        if m.first_audio_ms is not None:
            TURN_FIRST_AUDIO_MS.observe(m.first_audio_ms)
        if m.barge_in_ms is not None:
            BARGE_IN_MS.observe(m.barge_in_ms)
        if m.speculative_hit is not None:
            SPECULATIVE.labels("yes" if m.speculative_hit else "no").inc()
