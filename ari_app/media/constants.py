"""media: the frame every room agrees on, defined once.

Inside the product audio is 8 kHz mono int16 little-endian PCM in 20 ms frames (the G.711 ptime
Asterisk uses on ExternalMedia). The RTP side, the media clock, VAD, endpointing and TTS all
count in these frames.
"""

from __future__ import annotations

SAMPLE_RATE = 8000
FRAME_MS = 20
FRAME_INTERVAL = FRAME_MS / 1000  # seconds between two frames on the wire
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000  # 160 = also the RTP timestamp step per frame
FRAME_BYTES = FRAME_SAMPLES * 2  # 320 bytes of int16 PCM per frame
