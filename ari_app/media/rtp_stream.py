"""media: the numbering of the RTP packets we send (sequence, timestamp, SSRC, marker).

Timing is the media clock's job (clock.py); this only numbers. Silence policy: when there is
nothing to play we send nothing (no comfort noise). Asterisk's chan_rtp and bridges cope with
gaps, and every new talkspurt starts with the marker bit and a timestamp that has advanced by the
wall-clock length of the gap, as RFC 3550 asks.
"""

from __future__ import annotations

import secrets

from ari_app.media.constants import FRAME_SAMPLES, SAMPLE_RATE
from ari_app.media.rtp import RtpPacket


class OutboundRtpStream:
    """Numbering for the packets we send: random SSRC and starting points (RFC 3550 §5.1),
    sequence +1 per packet, timestamp +160 per 20 ms frame, marker on each talkspurt's first packet.
    """

    def __init__(
        self,
        payload_type: int,
        *,
        ssrc: int | None = None,
        sequence: int | None = None,
        timestamp: int | None = None,
        samples_per_frame: int = FRAME_SAMPLES,
        sample_rate: int = SAMPLE_RATE,
    ) -> None:
        self.payload_type = payload_type
        self.ssrc = secrets.randbits(32) if ssrc is None else ssrc
        self._seq = secrets.randbits(16) if sequence is None else sequence & 0xFFFF
        self._ts = secrets.randbits(32) if timestamp is None else timestamp & 0xFFFFFFFF
        self._step = samples_per_frame
        self._rate = sample_rate
        self._last_at: float | None = None
        self._new_talkspurt = True

    def start_talkspurt(self) -> None:
        """The next packet begins new audio after silence: marker bit and a timestamp jump."""
        self._new_talkspurt = True

    def packet(self, payload: bytes, *, at: float) -> RtpPacket:
        """The packet carrying one frame, scheduled for monotonic time ``at``."""
        marker = self._new_talkspurt
        if self._last_at is not None:
            step = self._step
            if marker:
                # Advance by the silence we skipped, in whole frames, at least one.
                frames = round((at - self._last_at) * self._rate / self._step)
                step = max(1, frames) * self._step
            self._ts = (self._ts + step) & 0xFFFFFFFF
            self._seq = (self._seq + 1) & 0xFFFF
        self._last_at = at
        self._new_talkspurt = False
        return RtpPacket(
            payload_type=self.payload_type,
            sequence=self._seq,
            timestamp=self._ts,
            ssrc=self.ssrc,
            marker=marker,
            payload=payload,
        )
