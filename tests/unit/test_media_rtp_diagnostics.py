"""A mute bot is diagnosed: real UDP datagrams with the wrong payload type, or no RTP at all,
sent to a real RtpTransport on 127.0.0.1 are dropped, counted in Prometheus, and logged once
per transport with the sender; RFC 4733 telephone-events are dropped quietly."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Iterator

import pytest
from prometheus_client import REGISTRY

from ari_app.media import AudioFrame, PortPool, RtpPacket, RtpTransport

PORT_MIN, PORT_MAX = 41300, 41399  # away from test_media_transport's range and real calls
LOGGER = "ari_app.media.rtp_transport"


def rtp(seq: int, pt: int = 0, payload: bytes = b"\xff" * 160) -> bytes:
    return RtpPacket(payload_type=pt, sequence=seq, timestamp=seq * 160, ssrc=7, payload=payload).serialize()


def unexpected(received: int, expected: int = 0) -> float:
    labels = {"expected": str(expected), "received": str(received)}
    return REGISTRY.get_sample_value("iva_rtp_unexpected_payload_total", labels) or 0.0


def malformed() -> float:
    return REGISTRY.get_sample_value("iva_rtp_malformed_total") or 0.0


@pytest.fixture
async def pool() -> AsyncIterator[PortPool]:
    p = PortPool("127.0.0.1", PORT_MIN, PORT_MAX)
    yield p
    assert p.in_use == frozenset(), "a test leaked RTP ports"


@pytest.fixture
def sender() -> Iterator[socket.socket]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    yield s
    s.close()


async def drain(t: RtpTransport, quiet: float = 0.15) -> list[AudioFrame]:
    out: list[AudioFrame] = []
    it = aiter(t.frames())
    while True:
        try:
            out.append(await asyncio.wait_for(anext(it), quiet))
        except (TimeoutError, StopAsyncIteration):
            return out


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno >= logging.WARNING]


async def test_wrong_payload_and_garbage_are_dropped_counted_and_logged_once(
    pool: PortPool, sender: socket.socket, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    before = {"alaw": unexpected(8), "pt9": unexpected(9), "dtmf": unexpected(101), "bad": malformed()}
    t = await RtpTransport.open(pool, "ulaw")
    dest = ("127.0.0.1", t.local_port)
    host, port = sender.getsockname()
    try:
        for seq in range(5):  # Asterisk sends alaw while we expect ulaw: the deaf-bot mismatch
            sender.sendto(rtp(seq, pt=8), dest)
        sender.sendto(rtp(5, pt=9), dest)  # a second unexpected type: counted, not logged again
        for seq in range(6, 9):  # telephone-events: expected, the digits come through ARI
            sender.sendto(rtp(seq, pt=101, payload=b"\x01\x0a\x00\xa0"), dest)
        for junk in (b"hello", b"\x80", b"\x00" * 40, b"\x80\xc8" + b"\x00" * 30):  # garbage, RTCP
            sender.sendto(junk, dest)
        assert await drain(t) == []  # nothing of it reaches the caller's audio

        s = t.stats
        assert (s.wrong_payload_type, s.bad_packets, s.packets_in) == (9, 4, 0)
        assert t.remote is None  # dropped packets do not lock in the remote address
        assert unexpected(8) - before["alaw"] == 5
        assert unexpected(9) - before["pt9"] == 1
        assert unexpected(101) - before["dtmf"] == 0
        assert malformed() - before["bad"] == 4

        logged = warnings(caplog)
        assert len(logged) == 2, logged  # one per kind, not one per packet
        wrong, bad = sorted(logged, key=lambda m: "unusable" in m)
        assert "payload type 8" in wrong and f"from {host}:{port}" in wrong
        assert "expected 0 (ulaw" in wrong
        assert "unusable datagrams" in bad and f"from {host}:{port}: truncated: 5 bytes" in bad

        sender.sendto(rtp(20), dest)  # the right codec still plays
        sender.sendto(rtp(21), dest)
        assert [f.sequence for f in await drain(t)] == [20, 21]
        assert len(warnings(caplog)) == 2
    finally:
        await t.close()


async def test_each_call_logs_its_own_first_problem(
    pool: PortPool, sender: socket.socket, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    for _ in range(2):
        t = await RtpTransport.open(pool, "slin")
        try:
            for seq in range(3):
                sender.sendto(rtp(seq, pt=0), ("127.0.0.1", t.local_port))
            await drain(t, quiet=0.1)
        finally:
            await t.close()
    logged = warnings(caplog)
    assert len(logged) == 2 and all("payload type 0" in m and "expected 10 (slin" in m for m in logged)
