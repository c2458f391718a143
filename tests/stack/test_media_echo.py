"""Real Asterisk: two ExternalMedia channels in one mixing bridge; a tone played on one of our
RtpTransports must come out of the other, in both directions, for every format we support."""

from __future__ import annotations

import asyncio
import contextlib
import secrets

import aiohttp
import numpy as np
import pytest

from ari_app.config import Settings
from ari_app.media import PortPool, RtpTransport
from ari_app.media.constants import SAMPLE_RATE

pytestmark = pytest.mark.stack


def tone(freq: float, seconds: float, amplitude: int = 8000) -> bytes:
    t = np.arange(int(SAMPLE_RATE * seconds)) / SAMPLE_RATE
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype("<i2").tobytes()


def dominant_frequency(pcm: bytes) -> tuple[float, float, float]:
    """(peak frequency in Hz, share of the energy within ±50 Hz of it, RMS)."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size))) ** 2
    freqs = np.fft.rfftfreq(x.size, 1 / SAMPLE_RATE)
    peak = float(freqs[int(np.argmax(spectrum))])
    near = spectrum[np.abs(freqs - peak) <= 50].sum()
    return peak, float(near / spectrum.sum()), float(np.sqrt(np.mean(x**2)))


async def collect(transport: RtpTransport, seconds: float) -> bytes:
    out = bytearray()

    async def read() -> None:
        async for frame in transport.frames():
            out.extend(frame.pcm)

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(read(), seconds)
    return bytes(out)


class Ari:
    """Just enough ARI over plain aiohttp for this test (the real client lives elsewhere)."""

    def __init__(self, settings: Settings, http: aiohttp.ClientSession, app: str) -> None:
        self.url = settings.ari.url
        self.http = http
        self.app = app
        self.started: dict[str, asyncio.Event] = {}
        self.ended: list[str] = []  # StasisEnd seen: hung up by someone (we only hang up at the end)

    async def call(self, method: str, path: str, *, missing_ok: bool = False, **params: str) -> dict:
        async with self.http.request(method, self.url + path, params=params) as r:
            body = await r.json(content_type=None) if r.content_length != 0 else None
            if r.status == 404 and missing_ok:
                return {}
            assert r.status < 300, f"{method} {path} {params} -> {r.status} {body}"
            return body or {}

    def stasis_started(self, channel_id: str) -> asyncio.Event:
        return self.started.setdefault(channel_id, asyncio.Event())

    async def pump(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            event = msg.json()
            if event.get("type") == "StasisStart":
                self.stasis_started(event["channel"]["id"]).set()
            elif event.get("type") == "StasisEnd":
                self.ended.append(event["channel"]["id"])

    async def external_media(self, transport: RtpTransport, fmt: str) -> tuple[str, str, int]:
        """Create the channel, wait for its StasisStart, return (id, Asterisk RTP host, port)."""
        channel = await self.call(
            "POST",
            "/channels/externalMedia",
            app=self.app,
            external_host=f"127.0.0.1:{transport.local_port}",
            format=fmt,
        )
        await asyncio.wait_for(self.stasis_started(channel["id"]).wait(), 5)
        variables = channel.get("channelvars") or {}
        host = variables.get("UNICASTRTP_LOCAL_ADDRESS")
        port = variables.get("UNICASTRTP_LOCAL_PORT")
        if host is None or port is None:
            get = "/channels/{}/variable".format(channel["id"])
            host = (await self.call("GET", get, variable="UNICASTRTP_LOCAL_ADDRESS"))["value"]
            port = (await self.call("GET", get, variable="UNICASTRTP_LOCAL_PORT"))["value"]
        return channel["id"], host, int(port)


@pytest.mark.parametrize("fmt", ["ulaw", "alaw", "slin"])
async def test_tone_crosses_a_real_bridge_both_ways(asterisk, settings: Settings, fmt: str) -> None:
    # A private app name: other tests may hold the 'ari-app' events socket at the same time.
    app = f"media-test-{secrets.token_hex(4)}"
    password = settings.ari.password.get_secret_value()
    auth = {"Authorization": aiohttp.encode_basic_auth(settings.ari.username, password)}
    pool = PortPool.from_settings(settings.media)
    async with aiohttp.ClientSession(headers=auth) as http:
        ari = Ari(settings, http, app)
        ws = await http.ws_connect(settings.ari.ws_url, params={"app": app})
        pump = asyncio.create_task(ari.pump(ws))
        a = await RtpTransport.open(pool, fmt)
        b = await RtpTransport.open(pool, fmt)
        bridge_id = None
        channels: list[str] = []
        try:
            ch_a, host_a, port_a = await ari.external_media(a, fmt)
            channels.append(ch_a)
            ch_b, host_b, port_b = await ari.external_media(b, fmt)
            channels.append(ch_b)
            bridge_id = (await ari.call("POST", "/bridges", type="mixing"))["id"]
            await ari.call("POST", f"/bridges/{bridge_id}/addChannel", channel=f"{ch_a},{ch_b}")

            # A is told Asterisk's address (as the call code will do); B must learn it.
            a.set_remote(host_a, port_a)
            heard_by_b = asyncio.create_task(collect(b, 2.0))
            result = await a.play(tone(1000, 1.0))
            assert result.frames_sent == 50 and not result.stopped
            pcm_b = await heard_by_b
            assert not ari.ended, f"channels {ari.ended} were hung up mid-test (another test reset Asterisk?)"

            peak, share, rms = dominant_frequency(pcm_b)
            assert len(pcm_b) >= 320 * 40, f"B got only {len(pcm_b)} bytes of {fmt} audio"
            assert abs(peak - 1000) <= 20 and share > 0.8 and rms > 1000, (peak, share, rms)
            assert b.remote == (host_b, port_b), "B should have learned Asterisk's RTP address"
            assert b.stats.wrong_payload_type == 0 and b.stats.bad_packets == 0, b.stats

            heard_by_a = asyncio.create_task(collect(a, 2.0))
            await b.play(tone(600, 1.0))
            peak, share, rms = dominant_frequency(await heard_by_a)
            assert abs(peak - 600) <= 20 and share > 0.8 and rms > 1000, (peak, share, rms)
            assert a.stats.unexpected_source == 0 and a.stats.wrong_payload_type == 0, a.stats
        finally:
            for channel in channels:
                await ari.call("DELETE", f"/channels/{channel}", missing_ok=True)
            if bridge_id:
                await ari.call("DELETE", f"/bridges/{bridge_id}", missing_ok=True)
            await a.close()
            await b.close()
            pump.cancel()
            await ws.close()
    assert pool.in_use == frozenset(), f"ports leaked: {sorted(pool.in_use)}"
