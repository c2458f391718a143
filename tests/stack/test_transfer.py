"""Warm transfer end to end on the real stack: a real SIP caller talks to the running Service,
asks for a person, and an agent phone (queue ``support``) gets the call with the context as SIP
headers, a whispered summary, then the caller; plus every way it can go wrong: nobody answers,
the agent hangs up during the whisper, the caller hangs up on hold, the queue does not exist."""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from urllib.parse import urlparse

import aiohttp
import numpy as np
import pytest

from ari_app.agent.voice import NO_ANSWER_PROMPT, TRANSFER_FAILED_PROMPT
from ari_app.ari import AriClient
from ari_app.config import Settings, load_settings
from ari_app.demo import caller_voice, start_demo_backend
from ari_app.service import Service
from ari_app.session.models import CallRecord
from ari_app.testcaller.agent_phone import AgentCall, AgentPhone
from ari_app.testcaller.caller import CallReport, Dtmf, Silence, Step, Utterance, WaitForAgent, place_call
from ari_app.testcaller.rtp_peer import RtpPeer
from ari_app.web import links
from tests.redis_scan import values_of

pytestmark = pytest.mark.stack

TOKEN = "transfer-test-token"
CALLER_ID = "+15551234567"
ASK_PERSON = "I want to talk to a person"
LINES = ["I need to reschedule my appointment", "April twelfth, nineteen eighty five", ASK_PERSON,
         "what time do you open"]  # fmt: skip
CALLER_TONE_HZ, AGENT_TONE_HZ = 700.0, 1500.0
RING_S = 6.0  # transfer.timeout for the no-answer cases


def tone(freq: float, seconds: float) -> np.ndarray:
    t = np.arange(int(8000 * seconds)) / 8000
    return (np.sin(2 * np.pi * freq * t) * 8000).astype(np.int16)


def tone_share(pcm: np.ndarray, freq: float) -> float:
    """Share of the signal's energy within 30 Hz of ``freq`` (1.0 = a pure tone)."""
    x = pcm.astype(np.float64)
    if not x.any():
        return 0.0
    spec = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / 8000)
    return float(spec[(freqs > freq - 30) & (freqs < freq + 30)].sum() / spec.sum())


def heard(peer: RtpPeer, since: float, until: float = float("inf")) -> np.ndarray:
    parts = [p.pcm for p in peer.received if p.pcm is not None and since <= p.arrival < until]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)


async def wait_for(pred: Callable[[], bool], timeout: float, what: str) -> float:
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        await asyncio.sleep(0.05)
    return time.monotonic()


def hears_tone(peer: RtpPeer, freq: float, since: float) -> Callable[[], bool]:
    def check() -> bool:
        recent = heard(peer, max(since, time.monotonic() - 0.4))
        return len(recent) >= 2400 and tone_share(recent, freq) > 0.7

    return check


# ---------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def transfer_settings(real_stack) -> Settings:
    """The test's own settings: a web token for the context API, tunable transfer timeout."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ARI_APP_WEB__TOKEN", TOKEN)
        return load_settings()


@pytest.fixture(scope="module")
async def service(transfer_settings: Settings) -> AsyncIterator[Service]:
    url = urlparse(os.environ.get("DEMO_BACKEND_URL", "http://127.0.0.1:8765"))
    backend = await start_demo_backend(url.port or 8765)
    svc = Service(transfer_settings)
    await svc.start()
    yield svc
    await svc.stop()
    await backend.cleanup()


@pytest.fixture(scope="module")
async def voices() -> dict[str, np.ndarray]:
    return await caller_voice(LINES)


@pytest.fixture
async def svc(service: Service, asterisk) -> AsyncIterator[Service]:
    """The running service on a clean Asterisk; transfer settings restored after each test."""
    s = service.settings
    timeout, queue = s.transfer.timeout, s.transfer.queue
    yield service
    s.transfer.timeout, s.transfer.queue = timeout, queue


@pytest.fixture
async def ari(settings: Settings) -> AsyncIterator[AriClient]:
    async with AriClient(settings.ari) as client:
        yield client


@pytest.fixture
async def phone_factory(settings: Settings) -> AsyncIterator[Callable[..., AgentPhone]]:
    phones: list[AgentPhone] = []

    def make(**kw) -> AgentPhone:
        phones.append(AgentPhone("127.0.0.1", settings.stack.agent_port, **kw))
        return phones[-1]

    yield make
    for p in phones:
        await p.stop()


# ---------------------------------------------------------------------------------- helpers
def say(voices: dict[str, np.ndarray], text: str) -> Utterance:
    return Utterance(pcm=voices[text]) if text in voices else Utterance(text=text)


def call_task(settings: Settings, script: Sequence[Step], listen_s: float = 0.0) -> asyncio.Task[CallReport]:
    return asyncio.create_task(
        place_call(
            settings.stack.extension,
            script,
            listen_s=listen_s,
            sip_port=settings.stack.sip_port,
            extra_headers=[("P-Asserted-Identity", f"<sip:{CALLER_ID}@127.0.0.1>")],
        )
    )


# What the caller's date of birth could look like where it leaked (not bare digits: a timestamp
# in Redis may hold "1985" by chance).
DOB_FORMS = ("1985-04-12", "04-12-1985", "04/12/1985", "April 12", "April twelfth", "nineteen eighty")
# The year alone, as a number of its own: not the digits inside a timestamp ("08.481985",
# "1796682505.7198524"), which CI once matched.
BIRTH_YEAR = re.compile(r"(?<![\d.])1985(?!\d)")


async def redis_dump(svc: Service, sid: str) -> bytes:
    """Every value the store wrote for this call, and of the shared index keys. Other calls'
    keys are left out: Redis keeps the records of earlier runs for the retention period."""
    r, p = svc.store.redis.client, svc.store.keys.prefix
    keys = [k async for k in r.scan_iter(match=f"{p}:call:{sid}*")]
    keys += [k async for k in r.scan_iter(match=f"{p}:*") if not k.startswith(f"{p}:call:".encode())]
    return await values_of(r, keys)


async def record_of(svc: Service, sid: str) -> CallRecord:
    rec = await svc.store.get(sid)
    assert rec is not None, f"no session record {sid} in Redis"
    return rec


async def transfer_events(svc: Service, sid: str) -> list[tuple[float, dict]]:
    return [(e.at, e.data["transfer"]) for e in await svc.store.events(sid) if e.type == "transfer"]


async def transcribe(svc: Service, pcm: np.ndarray) -> str:
    assert svc.deps is not None
    return (await svc.deps.asr.transcribe(pcm.astype("<i2").tobytes())).text.lower()


async def released(ari: AriClient, timeout: float = 5.0) -> None:
    """Every channel and bridge of the call is gone (the stack holds nothing else)."""
    left: list[str] = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        left = [c.id for c in await ari.list_channels()] + [b.id for b in await ari.list_bridges()]
        if not left:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"still in Asterisk {timeout:g} s after the call: {left}")


def live_session(svc: Service) -> str:
    assert svc.manager is not None
    sids = [c.info.session_id for c in svc.manager.calls.values()]
    assert len(sids) == 1, f"expected one live call, found {sids}"
    return sids[0]


async def ringing_call(phone: AgentPhone, timeout: float = 40.0) -> AgentCall:
    return await phone.next_call(timeout=timeout)


# ---------------------------------------------------------------------------------- tests
async def test_warm_transfer_connects_caller_and_agent_with_context(svc, settings, voices, ari,
                                                                    phone_factory, capfd) -> None:  # fmt: skip
    svc.settings.transfer.timeout = 20
    phone = await phone_factory(mode="answer", ring_delay_s=0.5).start()
    script = [
        WaitForAgent(),
        say(voices, LINES[0]),
        WaitForAgent(),
        Dtmf("5551234567#"),
        WaitForAgent(),
        say(voices, LINES[1]),
        WaitForAgent(quiet_s=1.5),
        say(voices, ASK_PERSON),
        Silence(2.0),  # end of turn, "let me connect you", then hold
        Utterance(pcm=tone(CALLER_TONE_HZ, 40)),  # the caller's side of the talk with the agent
    ]
    caller = call_task(settings, script)
    agent = await ringing_call(phone, timeout=60)
    sid = live_session(svc)

    # the INVITE carries the context, and nothing sensitive
    assert agent.header("X-IVA-Session") == sid
    assert agent.header("X-IVA-Reason") == "caller_request"
    assert agent.header("X-IVA-Caller") == CALLER_ID
    assert agent.header("X-IVA-Intent") == "reschedule_appointment"
    summary = agent.header("X-IVA-Summary") or ""
    assert "Caller asked for a person" in summary and "5551234567" in summary, summary
    iva = {k: v for k, v in agent.headers.items() if k.lower().startswith("x-iva-")}
    for secret in (*DOB_FORMS, "0412", "dob", "****"):
        assert not any(secret in v for v in iva.values()), f"{secret!r} in SIP headers {iva}"
    assert not any(BIRTH_YEAR.search(v) for v in iva.values()), f"the birth year in SIP headers {iva}"
    link = agent.header("X-IVA-Link") or ""  # this call's agent page, signed and expiring
    assert links.verify(sid, link, TOKEN) and not links.verify("another-call", link, TOKEN)

    # whisper to the agent only, then the caller's audio
    await wait_for(lambda: agent.answered_at is not None, 5, "agent phone answered")
    connected_at = await wait_for(hears_tone(agent.rtp, CALLER_TONE_HZ, agent.answered_at), 30,
                                  "agent hears the caller after the whisper")  # fmt: skip
    whisper = heard(agent.rtp, agent.answered_at, connected_at - 0.5)
    assert tone_share(whisper, CALLER_TONE_HZ) < 0.1, "the agent heard the caller during the whisper"
    words = await transcribe(svc, whisper)
    assert "incoming call" in words and "person" in words, words

    # our media leg is gone; the caller and the agent share one bridge
    channels = [c.id for c in await ari.list_channels()]
    assert not [c for c in channels if c.startswith("iva-media-")], channels
    bridges = [b for b in await ari.list_bridges() if b.id.startswith("iva-")]
    assert [b.id for b in bridges] == [f"iva-agentbr-{sid}"], bridges

    # the caller hears the agent
    spoke = time.monotonic()
    await agent.play(tone(AGENT_TONE_HZ, 1.5))

    # the context: Redis record and the web API
    rec = await record_of(svc, sid)
    assert rec.status == "transferred"
    assert rec.transfer and rec.transfer["outcome"] == "connected", rec.transfer
    assert rec.transfer["reason"] == "caller_request" and rec.transfer["queue"] == "support"
    assert rec.slots.get("phone") == "5551234567", rec.slots
    assert rec.slots.get("dob") and "1985-04-12" not in str(rec.slots["dob"]), rec.slots
    said = [t.text.lower() for t in rec.transcript if t.speaker == "caller"]
    assert any("person" in t for t in said), said
    url = f"http://{settings.web.host}:{settings.web.port}/api/context/{sid}"
    async with aiohttp.ClientSession() as http:
        async with http.get(url, headers={"Authorization": f"Bearer {TOKEN}"}) as r:
            assert r.status == 200, await r.text()
            ctx = await r.json()
        async with http.get(url) as r:
            assert r.status == 401
        async with http.get(f"http://{settings.web.host}:{settings.web.port}/metrics") as r:
            metrics_text = await r.text()  # labels are engine, stage, flow names: never caller data
    assert "iva_" in metrics_text, metrics_text[:200]
    for secret in (*DOB_FORMS, "5551234567", CALLER_ID):
        assert secret not in metrics_text, f"{secret!r} in /metrics"
    assert ctx["session_id"] == sid and ctx["reason"] == "caller_request"
    assert ctx["transfer"]["outcome"] == "connected" and ctx["caller"]["number"] == CALLER_ID
    assert ctx["slots"]["phone"] == "5551234567" and not BIRTH_YEAR.search(json.dumps(ctx["slots"]))
    assert any("person" in (t["text"] or "").lower() for t in ctx["transcript"]), ctx["transcript"]
    assert not BIRTH_YEAR.search(json.dumps(ctx)), "the agent page shows the date of birth"

    # nothing the caller said that is sensitive is readable anywhere we keep things
    assert rec.conversation_state, "no dialogue state stored"
    everything = await redis_dump(svc, sid)
    for form in DOB_FORMS:
        assert form.encode() not in everything, f"{form!r} is in Redis in clear"
    assert b"enc:" in everything, "the date of birth was not stored encrypted"
    cached = {p.name for p in (svc.settings.speech.cache_dir / "prompts").glob("*/*.pcm")}
    allowed = {svc.deps.tts.path_for(t).name for t in svc.deps.prompts}  # type: ignore[union-attr]
    assert cached <= allowed, "a prompt rendered for this caller was written to the TTS cache"
    out = capfd.readouterr()
    logs = out.out + out.err
    assert "call." in logs, "no log lines were captured to scan"
    for form in DOB_FORMS:
        assert form not in logs, f"{form!r} in the logs"

    # the agent hangs up: the caller is hung up too and everything is released
    await agent.hangup()
    report = await asyncio.wait_for(caller, 10)
    assert report.sip.ended_by == "remote"
    got = heard(report.rtp, spoke, spoke + 2.0)
    assert tone_share(got, AGENT_TONE_HZ) > 0.5, "the caller did not hear the agent"
    await released(ari)
    await wait_for(lambda: not svc.manager.calls, 5, "the service let go of the call")
    assert (await record_of(svc, sid)).end_reason == "transferred"


async def test_no_answer_brings_the_caller_back(svc, settings, voices, ari, phone_factory) -> None:
    svc.settings.transfer.timeout = RING_S
    phone = await phone_factory(mode="no-answer").start()
    script = [WaitForAgent(), say(voices, ASK_PERSON), Silence(RING_S + 1.0),
              WaitForAgent(timeout_s=10, quiet_s=1.5), say(voices, LINES[3]), WaitForAgent()]  # fmt: skip
    caller = call_task(settings, script)
    agent = await ringing_call(phone)
    sid = live_session(svc)
    assert agent.header("X-IVA-Session") == sid
    await wait_for(agent.ended.is_set, RING_S + 2, "the agent phone stops ringing")
    assert agent.state == "cancelled"
    report = await asyncio.wait_for(caller, 40)
    await wait_for(lambda: not svc.manager.calls, 5, "the service let go of the call")

    events = await transfer_events(svc, sid)
    outcomes = [(at, d["outcome"]) for at, d in events]
    assert [o for _, o in outcomes] == ["transferring", "no_answer"], outcomes
    back_after = outcomes[1][0] - outcomes[0][0]
    print(f"no answer: caller back in the conversation {back_after:.2f} s after the transfer began")
    assert back_after <= RING_S + 1.0, f"caller back after {back_after:.2f} s"
    words = await transcribe(svc, heard(report.rtp, agent.received_at + RING_S - 1.0))
    assert "nobody is free" in words, words
    rec = await record_of(svc, sid)
    texts = [(t.speaker, t.text) for t in rec.transcript]
    i = texts.index(("agent", NO_ANSWER_PROMPT))
    assert any(who == "caller" for who, _ in texts[i:]), texts  # the conversation went on
    assert any(who == "agent" for who, _ in texts[i + 1 :]), texts
    await released(ari)


async def test_agent_hangs_up_during_whisper(svc, settings, voices, ari, phone_factory) -> None:
    svc.settings.transfer.timeout = 20
    phone = await phone_factory(mode="answer").start()
    script = [WaitForAgent(), say(voices, ASK_PERSON), Silence(2.0), Utterance(pcm=tone(CALLER_TONE_HZ, 3)),
              WaitForAgent(timeout_s=15, quiet_s=1.5)]  # fmt: skip
    caller = call_task(settings, script)
    agent = await ringing_call(phone)
    sid = live_session(svc)
    await wait_for(lambda: agent.answered_at is not None, 5, "agent phone answered")
    await wait_for(lambda: bool(agent.rtp.voiced_spans()), 5, "the whisper starts")
    await asyncio.sleep(0.5)
    left = time.monotonic()
    await agent.hangup()
    report = await asyncio.wait_for(caller, 40)
    await wait_for(lambda: not svc.manager.calls, 5, "the service let go of the call")

    assert tone_share(heard(agent.rtp, agent.answered_at), CALLER_TONE_HZ) < 0.1
    rec = await record_of(svc, sid)
    assert rec.transfer and rec.transfer["outcome"] == "agent_hung_up", rec.transfer
    assert ("agent", NO_ANSWER_PROMPT) in [(t.speaker, t.text) for t in rec.transcript]
    words = await transcribe(svc, heard(report.rtp, left))
    assert "nobody is free" in words, words
    await released(ari)


async def test_caller_hangs_up_on_hold_cancels_the_agent(svc, settings, voices, ari, phone_factory) -> None:
    svc.settings.transfer.timeout = 20
    phone = await phone_factory(mode="no-answer").start()
    # the caller hangs up (BYE) 6 s after asking: on hold, with the agent's phone ringing
    caller = call_task(settings, [WaitForAgent(), say(voices, ASK_PERSON), Silence(6.0)])
    agent = await ringing_call(phone)
    sid = live_session(svc)
    report = await asyncio.wait_for(caller, 15)
    assert report.sip.ended_by == "local" and not agent.ended.is_set()
    await wait_for(agent.ended.is_set, 5, "the agent's INVITE is cancelled")
    assert agent.state == "cancelled"
    await released(ari)
    await wait_for(lambda: not svc.manager.calls, 5, "the service let go of the call")
    rec = await record_of(svc, sid)
    assert rec.status == "ended" and rec.end_reason == "caller_hangup", (rec.status, rec.end_reason)


async def test_unknown_queue_fails_cleanly_back_to_the_conversation(svc, settings, voices, ari,
                                                                    phone_factory) -> None:  # fmt: skip
    svc.settings.transfer.queue = "nosuchqueue"
    phone = await phone_factory(mode="answer").start()
    script = [WaitForAgent(), say(voices, ASK_PERSON), WaitForAgent(timeout_s=15, quiet_s=1.5)]
    caller = call_task(settings, script)
    await wait_for(lambda: bool(svc.manager.calls), 10, "the service takes the call")
    sid = live_session(svc)
    report = await asyncio.wait_for(caller, 40)
    await wait_for(lambda: not svc.manager.calls, 5, "the service let go of the call")
    assert not phone.calls, "an agent was rung for a queue that does not exist"
    events = await transfer_events(svc, sid)
    assert [d["outcome"] for _, d in events] == ["transferring", "failed"], events
    assert events[0][1]["queue"] == "nosuchqueue"
    rec = await record_of(svc, sid)
    assert ("agent", TRANSFER_FAILED_PROMPT) in [(t.speaker, t.text) for t in rec.transcript]
    words = await transcribe(svc, heard(report.rtp, report.t0))
    assert "can't transfer you" in words or "cannot transfer you" in words, words
    await released(ari)
