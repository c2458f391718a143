from __future__ import annotations

import asyncio
import itertools
import socket
import time
from collections.abc import AsyncIterator

import numpy as np
import pytest

from ari_app.config import MediaSettings
from ari_app.media import AudioFrame, MediaError, MediaTransport, PortPool, RtpPacket, RtpTransport, get_codec
from ari_app.media.framing import pcm_frames

PORT_MIN, PORT_MAX = 41000, 41099  # away from media.rtp_port_min..max used by real calls


def tone(seconds: float, freq: float = 1000) -> bytes:
    t = np.arange(int(8000 * seconds)) / 8000
    return (8000 * np.sin(2 * np.pi * freq * t)).astype("<i2").tobytes()


@pytest.fixture
async def pool() -> AsyncIterator[PortPool]:
    p = PortPool("127.0.0.1", PORT_MIN, PORT_MAX)
    yield p
    assert p.in_use == frozenset(), "a test leaked RTP ports"


@pytest.fixture
async def pair(pool: PortPool) -> AsyncIterator[tuple[RtpTransport, RtpTransport]]:
    a = await RtpTransport.open(pool, "ulaw")
    b = await RtpTransport.open(pool, "ulaw")
    a.set_remote("127.0.0.1", b.local_port)
    yield a, b
    await a.close()
    await b.close()


async def drain(t: RtpTransport, quiet: float = 0.1) -> list[AudioFrame]:
    """Frames until none arrived for ``quiet`` seconds."""
    out: list[AudioFrame] = []
    it = aiter(t.frames())
    while True:
        try:
            out.append(await asyncio.wait_for(anext(it), quiet))
        except (TimeoutError, StopAsyncIteration):
            return out


def raw_socket() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    return s


def rtp(seq: int, pt: int = 0, ssrc: int = 1, payload: bytes = b"\xff" * 160) -> bytes:
    return RtpPacket(
        payload_type=pt, sequence=seq, timestamp=seq * 160, ssrc=ssrc, payload=payload
    ).serialize()


async def test_rtp_transport_is_a_media_transport(pair: tuple[RtpTransport, RtpTransport]) -> None:
    assert isinstance(pair[0], MediaTransport)


async def test_audio_goes_across_in_order_and_decoded(pair: tuple[RtpTransport, RtpTransport]) -> None:
    a, b = pair
    pcm = tone(0.5)
    start = time.monotonic()
    result = await a.play(pcm)
    assert result.frames_sent == 25 and not result.stopped
    assert result.first_frame_at is not None and result.first_frame_at - start < 0.02
    assert time.monotonic() - start == pytest.approx(0.48, abs=0.05)  # paced, not blasted
    frames = await drain(b)
    assert [len(f.pcm) for f in frames] == [320] * 25
    seqs = [f.sequence for f in frames]
    assert all((y - x) & 0xFFFF == 1 for x, y in itertools.pairwise(seqs))
    ulaw = get_codec("ulaw")
    assert b"".join(f.pcm for f in frames) == ulaw.decode(ulaw.encode(pcm))
    assert b.remote == ("127.0.0.1", a.local_port)  # learned from the first packet
    assert a.stats.packets_out == 25 and b.stats.packets_in == 25


async def test_stream_source_in_odd_chunks(pair: tuple[RtpTransport, RtpTransport]) -> None:
    a, b = pair

    async def tts() -> AsyncIterator[bytes]:
        data = tone(0.1)
        for i in range(0, len(data), 333):  # odd chunk size, like a TTS engine might give
            yield data[i : i + 333]

    assert (await a.play(tts())).frames_sent == 5
    assert len(await drain(b)) == 5


async def test_stop_playback_is_within_one_frame_and_flushes_the_queue(
    pair: tuple[RtpTransport, RtpTransport],
) -> None:
    a, b = pair
    first = asyncio.create_task(a.play(tone(5)))
    queued = asyncio.create_task(a.play(tone(5)))
    await asyncio.sleep(0.2)
    assert a.playing
    a.stop_playback()
    stopped_at = time.monotonic()
    r1, r2 = await asyncio.gather(first, queued)
    # The hard guarantee is "no packet after stop_playback()" (checked below); the wall-clock
    # bound is loose only because a loaded CI machine can delay the loop itself.
    assert time.monotonic() - stopped_at < 0.050
    assert r1.stopped and 5 <= r1.frames_sent <= 15
    assert r2 == type(r2)(frames_sent=0, stopped=True, first_frame_at=None)
    assert not a.playing
    await asyncio.sleep(0.06)
    assert a.stats.packets_out == r1.frames_sent  # nothing went out after the stop
    # A play issued after the barge-in is not affected by it.
    assert not (await a.play(tone(0.04))).stopped
    assert len(await drain(b)) == r1.frames_sent + 2


async def test_non_interruptible_play_ignores_barge_in_but_not_close(pool: PortPool) -> None:
    a = await RtpTransport.open(pool, "alaw")
    a.set_remote("127.0.0.1", 9)  # discard port; nobody listens
    task = asyncio.create_task(a.play(tone(0.1), interruptible=False))
    await asyncio.sleep(0.03)
    a.stop_playback()
    result = await task
    assert result.frames_sent == 5 and not result.stopped
    task = asyncio.create_task(a.play(tone(5), interruptible=False))
    await asyncio.sleep(0.05)
    await a.close()
    assert (await task).stopped


async def test_garbage_wrong_type_and_strangers_are_counted_not_raised(pool: PortPool) -> None:
    t = await RtpTransport.open(pool, "ulaw")
    asterisk, stranger = raw_socket(), raw_socket()
    dest = ("127.0.0.1", t.local_port)
    try:
        stranger.sendto(b"\x00garbage", dest)  # bad before any remote is known: does not lock it
        stranger.sendto(rtp(1, pt=8), dest)  # wrong payload type: does not lock it either
        asterisk.sendto(rtp(1), dest)
        asterisk.sendto(rtp(2), dest)
        stranger.sendto(rtp(3), dest)
        asterisk.sendto(b"\x80", dest)
        asterisk.sendto(rtp(3, payload=b"\xff" * 160), dest)
        frames = await drain(t)
        assert [f.sequence for f in frames] == [1, 2, 3]
        s = t.stats
        assert (s.bad_packets, s.wrong_payload_type, s.unexpected_source, s.packets_in) == (2, 1, 1, 3)
        assert "truncated: 1 bytes" in s.last_bad_reason
        assert t.remote == asterisk.getsockname()
    finally:
        asterisk.close()
        stranger.close()
        await t.close()


async def test_reordered_duplicate_and_restarted_streams(pool: PortPool) -> None:
    t = await RtpTransport.open(pool, "slin")
    src = raw_socket()
    dest = ("127.0.0.1", t.local_port)
    try:
        for seq in (65535, 1, 0, 1):
            src.sendto(rtp(seq, pt=10, payload=seq.to_bytes(2, "big") * 160), dest)
        src.sendto(rtp(500, pt=10, ssrc=2, payload=b"\x00\x07" * 160), dest)  # Asterisk re-bridged
        src.sendto(rtp(501, pt=10, ssrc=2, payload=b"\x00\x07\x00"), dest)  # odd slin payload
        frames = await drain(t)
        assert [f.sequence for f in frames] == [65535, 0, 1, 500]
        assert frames[1].pcm == b"\x00\x00" * 160 and frames[3].pcm == b"\x07\x00" * 160
        assert t.stats.duplicate_dropped == 1 and t.stats.bad_packets == 1
    finally:
        src.close()
        await t.close()


async def test_close_is_idempotent_and_ends_frames(pool: PortPool) -> None:
    t = await RtpTransport.open(pool, "ulaw")
    reader = asyncio.create_task(drain(t, quiet=5))
    await asyncio.sleep(0.01)
    await t.close()
    await t.close()
    assert await asyncio.wait_for(reader, 1) == []
    with pytest.raises(MediaError, match="closed RTP transport"):
        await t.play(b"\x00\x00")


async def test_play_without_a_remote_names_the_problem(pool: PortPool) -> None:
    t = await RtpTransport.open(pool, "ulaw", remote_wait=0.05)
    with pytest.raises(MediaError, match=r"no remote RTP address .* set_remote\(\) was not called"):
        await t.play(tone(0.02))
    with pytest.raises(ValueError, match="remote RTP port 0"):
        t.set_remote("127.0.0.1", 0)
    t.set_remote("0.0.0.0", 10000)  # Asterisk bound to all interfaces: learn instead
    assert t.remote is None
    await t.close()


async def test_port_pool_hands_out_even_ports_and_takes_them_back() -> None:
    blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    blocker.bind(("127.0.0.1", 41202))  # another process holds one port of the range
    pool = PortPool("127.0.0.1", 41201, 41206)
    try:
        got = [pool.acquire() for _ in range(2)]
        assert sorted(port for _, port in got) == [41204, 41206]
        assert pool.in_use == {41204, 41206}
        with pytest.raises(MediaError, match=r"no free even UDP port on 127.0.0.1 .* 41201..41206: 2 of 3"):
            pool.acquire()
        for sock, port in got:
            sock.close()
            pool.release(port)
        pool.release(41204)  # twice is harmless
        assert pool.in_use == frozenset()
        t = await RtpTransport.open(pool, "ulaw")
        assert pool.in_use == {t.local_port}
        await t.close()
        assert pool.in_use == frozenset()
    finally:
        blocker.close()


def test_port_pool_bad_ranges() -> None:
    with pytest.raises(ValueError, match=r"rtp_port_min=20010 is above media\.rtp_port_max=20000"):
        PortPool("127.0.0.1", 20010, 20000)
    with pytest.raises(ValueError, match="holds no even port"):
        PortPool("127.0.0.1", 20001, 20001)
    assert PortPool.from_settings(MediaSettings()).capacity == 500


async def test_framing_pads_the_tail_and_refuses_half_samples() -> None:
    assert [len(f) async for f in pcm_frames(b"\x01\x00" * 170)] == [320, 320]
    with pytest.raises(ValueError, match="3 bytes is not whole"):
        [f async for f in pcm_frames(b"abc")]


async def test_cancelling_the_caller_stops_sending(pair: tuple[RtpTransport, RtpTransport]) -> None:
    a, _ = pair
    task = asyncio.create_task(a.play(tone(5)))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not a.playing
    sent = a.stats.packets_out
    await asyncio.sleep(0.06)
    assert a.stats.packets_out == sent
