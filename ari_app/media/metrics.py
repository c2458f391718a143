"""Prometheus counters of the media room: inbound datagrams dropped because they are not the
call's audio. A steady rate of unexpected payload types is a codec mismatch (media.format vs what
Asterisk sends): the bot hears nothing. Exposed by the web app's /metrics next to the agent's."""

from __future__ import annotations

from prometheus_client import Counter

RTP_UNEXPECTED_PAYLOAD = Counter(
    "iva_rtp_unexpected_payload",
    "Inbound RTP packets dropped because their payload type is not the call's codec",
    ["expected", "received"],
)
RTP_MALFORMED = Counter(
    "iva_rtp_malformed",
    "Inbound datagrams dropped as unusable RTP (garbage, truncated, RTCP, undecodable payload)",
)
