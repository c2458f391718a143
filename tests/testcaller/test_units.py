"""The test caller's pieces on their own: SIP/SDP parsing, paced RTP between two local peers,
test audio, pcaps for sipp. No Asterisk needed."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import numpy as np
import pytest

from ari_app.testcaller import audio
from ari_app.testcaller.caller import Utterance
from ari_app.testcaller.rtp_peer import FRAME_SAMPLES, RtpError, RtpPeer
from ari_app.testcaller.sdp import SdpError, build_sdp, parse_sdp
from ari_app.testcaller.sip_message import SipParseError, parse_message, response_to, tag_of, uri_of
from tests.sipp.pcap import read_pcap_udp, write_dtmf_pcap, write_speech_pcap

INVITE = (
    b"INVITE sip:1000@127.0.0.1:5060 SIP/2.0\r\n"
    b"v: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bKabc;rport\r\n"
    b'f: "Test" <sip:caller@127.0.0.1>;tag=t1\r\n'
    b"t: <sip:1000@127.0.0.1:5060>\r\n"
    b"i: call-1@127.0.0.1\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"X-IVA-Session: s-1\r\n"
    b"Subject: a folded\r\n  header\r\n"
    b"l: 4\r\n\r\nbodyEXTRA"
)


def test_sip_message_parses_compact_and_folded_headers() -> None:
    msg = parse_message(INVITE)
    assert msg.is_request and msg.method == "INVITE"
    assert msg.call_id == "call-1@127.0.0.1"
    assert msg.header("via") == "SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bKabc;rport"
    assert msg.header("x-iva-session") == "s-1"
    assert msg.header("Subject") == "a folded header"
    assert msg.body == b"body"  # Content-Length wins over trailing bytes
    assert tag_of(msg.header("From") or "") == "t1"
    assert uri_of(msg.header("From") or "") == "sip:caller@127.0.0.1"


def test_response_copies_transaction_headers_and_adds_our_tag() -> None:
    resp = parse_message(response_to(parse_message(INVITE), 180, "Ringing", to_tag="me").to_bytes())
    assert resp.status == 180 and resp.reason == "Ringing" and resp.method == "INVITE"
    assert tag_of(resp.header("To") or "") == "me"
    assert resp.header("Via") == parse_message(INVITE).header("Via")
    assert resp.header("Content-Length") == "0"


@pytest.mark.parametrize("bad", [b"HELLO\r\n\r\n", b"INVITE sip:x SIP/2.0\r\nno colon here\r\n\r\n"])
def test_unreadable_sip_is_a_clear_error(bad: bytes) -> None:
    with pytest.raises(SipParseError):
        parse_message(bad)


def test_sdp_round_trip_and_errors() -> None:
    media = parse_sdp(build_sdp("127.0.0.1", 40000, 7))
    assert (media.ip, media.port, media.payload_types, media.dtmf_payload_type) == (
        "127.0.0.1",
        40000,
        (0, 101),
        101,
    )
    with pytest.raises(SdpError, match="no m=audio"):
        parse_sdp(b"v=0\r\nc=IN IP4 127.0.0.1\r\n")
    with pytest.raises(SdpError, match="not PCMU"):
        parse_sdp(b"v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/AVP 8\r\n")


async def _peer_pair() -> tuple[RtpPeer, RtpPeer]:
    a, b = RtpPeer(send_silence=False), RtpPeer(send_silence=False)
    await a.open()
    await b.open()
    a.set_remote("127.0.0.1", b.local_port)
    b.set_remote("127.0.0.1", a.local_port)
    return a, b


async def test_rtp_peer_paces_20ms_packets_and_the_receiver_sees_the_voiced_span() -> None:
    a, b = await _peer_pair()
    try:
        pcm = audio.tone(440, 1.0)
        span = await a.play(pcm, "tone")
        await asyncio.sleep(0.1)
    finally:
        await a.close()
        await b.close()
    sent = [p.sent_at for p in a.sent]
    assert len(sent) == 50
    # Absolute deadlines: 49 intervals of 20 ms, no accumulated drift.
    assert span.end - span.start == pytest.approx(49 * 0.020, abs=0.015)
    assert max(np.diff(sent)) < 0.035
    assert len(b.received) == 50 and all(
        p.pcm is not None and p.pcm.size == FRAME_SAMPLES for p in b.received
    )
    spans = b.voiced_spans(-40)
    assert len(spans) == 1 and spans[0][1] - spans[0][0] == pytest.approx(0.98, abs=0.03)
    assert b.first_voiced_after(span.start - 0.001) == b.received[0].arrival
    got = b.received_pcm()
    assert got.size == pcm.size and np.corrcoef(got.astype(float), pcm.astype(float))[0, 1] > 0.99


async def test_rtp_peer_sends_rfc4733_events_8_updates_and_3_ends() -> None:
    a, b = await _peer_pair()
    try:
        await a.send_dtmf("5")
        await asyncio.sleep(0.1)
        with pytest.raises(RtpError, match="not a DTMF digit"):
            await a.send_dtmf("x")
    finally:
        await a.close()
        await b.close()
    events = [p for p in b.received if p.payload_type == 101]
    assert len(events) == 11
    assert {p.timestamp for p in events} == {events[0].timestamp}
    assert [p.marker for p in events] == [True] + [False] * 10
    assert all(p.dtmf is not None and p.dtmf.digit == "5" for p in events)
    assert [p.dtmf.end for p in events if p.dtmf] == [False] * 8 + [True] * 3
    assert [p.dtmf.duration for p in events if p.dtmf][:8] == [160 * i for i in range(1, 9)]


async def test_silence_is_sent_between_utterances_when_enabled() -> None:
    a, b = RtpPeer(), RtpPeer(send_silence=False)
    await a.open()
    await b.open()
    a.set_remote("127.0.0.1", b.local_port)
    a.start()
    await asyncio.sleep(0.3)
    await a.close()
    await b.close()
    assert len(b.received) >= 10 and all(p.dbfs < -60 for p in b.received)
    assert b.voiced_spans() == []


def test_load_wav_resamples_and_downmixes(tmp_path: Path) -> None:
    path = tmp_path / "stereo16k.wav"
    t = np.arange(16000) / 16000
    left = (np.sin(2 * np.pi * 500 * t) * 10000).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.stack([left, left], axis=1).tobytes())
    pcm = audio.load_wav(path)
    assert pcm.dtype == np.int16 and pcm.size == 8000
    assert audio.dbfs(pcm) == pytest.approx(audio.dbfs(left), abs=0.5)


def test_bad_audio_inputs_give_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "x.wav").write_text("not audio")
    with pytest.raises(audio.AudioError, match="not a PCM WAV"):
        audio.load_wav(tmp_path / "x.wav")
    with pytest.raises(audio.AudioError, match="does not exist"):
        audio.load_wav(tmp_path / "missing.wav")
    with pytest.raises(audio.AudioError, match="exactly one"):
        Utterance(text="hi", wav="x.wav").render()
    with pytest.raises(audio.AudioError, match="not one of"):
        audio.synthesize("hi", engine="say")
    with pytest.raises(audio.AudioError, match="silent"):
        audio.add_noise(np.zeros(800, dtype=np.int16), 10)


@pytest.mark.parametrize("engine", ["flite", "espeak-ng"])
def test_synthesized_sentence_is_speech_length_audio(engine: str) -> None:
    pcm = audio.synthesize("I need to reschedule my appointment", engine)
    assert 1.2 < pcm.size / 8000 < 4.0
    assert audio.dbfs(pcm) > -35


def test_noise_is_added_at_the_requested_snr() -> None:
    clean = audio.tone(300, 2.0, level_dbfs=-15)
    noisy = audio.add_noise(clean, 10.0, seed=1)
    noise = noisy.astype(float) - clean.astype(float)
    snr = 10 * np.log10(np.mean(clean.astype(float) ** 2) / np.mean(noise**2))
    assert snr == pytest.approx(10.0, abs=0.5)
    assert audio.with_pauses(clean, 0.5, clean).size == clean.size * 2 + 4000


def test_pcaps_hold_160_byte_ulaw_frames_every_20ms_and_dtmf_events(tmp_path: Path) -> None:
    speech = write_speech_pcap(tmp_path / "s.pcap", audio.tone(500, 0.5))
    packets = read_pcap_udp(speech)
    assert len(packets) == 25
    assert all(len(p) == 12 + 160 and p[1] & 0x7F == 0 for _, p in packets)
    assert np.allclose(np.diff([t for t, _ in packets]), 0.020)
    events = read_pcap_udp(write_dtmf_pcap(tmp_path / "d.pcap", "#"))
    assert len(events) == 11 and all(p[1] & 0x7F == 101 and p[12] == 11 for _, p in events)
    assert [bool(p[13] & 0x80) for _, p in events] == [False] * 8 + [True] * 3
