"""Cut PCM of any chunking into exact 20 ms frames for sending."""

from __future__ import annotations

from collections.abc import AsyncIterator

from ari_app.media.constants import FRAME_BYTES


async def pcm_frames(
    source: bytes | AsyncIterator[bytes], frame_bytes: int = FRAME_BYTES
) -> AsyncIterator[bytes]:
    """Yield ``frame_bytes``-long frames; the last partial frame is padded with silence.

    A TTS stream can hand us chunks of any size (even odd byte counts); they are joined here.
    """
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        if len(data) % 2:
            raise ValueError(f"PCM buffer of {len(data)} bytes is not whole 16-bit samples")
        for i in range(0, len(data), frame_bytes):
            frame = data[i : i + frame_bytes]
            yield frame.ljust(frame_bytes, b"\x00")
        return
    pending = bytearray()
    async for chunk in source:
        if not isinstance(chunk, bytes | bytearray | memoryview):
            raise TypeError(f"PCM stream yielded {type(chunk).__name__}, expected bytes")
        pending += chunk
        while len(pending) >= frame_bytes:
            yield bytes(pending[:frame_bytes])
            del pending[:frame_bytes]
    if len(pending) % 2:
        raise ValueError(f"PCM stream ended with an odd byte count ({len(pending)} bytes left over)")
    if pending:
        yield bytes(pending).ljust(frame_bytes, b"\x00")
