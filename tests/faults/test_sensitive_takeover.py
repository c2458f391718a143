"""Sensitive data across a takeover, on the real stack: a caller keys their phone number, says
their date of birth (a sensitive slot), the agent process is killed, a new one takes the call
over, goes on without asking for the date of birth again (decrypted in memory) and warm-transfers
the caller. Then every Redis key of the run, both agents' logs, the agent phone's SIP headers and
the TTS cache are scanned for the date of birth: none holds it in clear."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ari_app.agent.voice import RESUME_APOLOGY
from ari_app.config import Settings
from ari_app.speech.cache import CachedTts
from ari_app.speech.tts import make_tts
from ari_app.testcaller.agent_phone import AgentPhone
from ari_app.testcaller.caller import Dtmf, Silence, Utterance, WaitForAgent
from tests.faults.test_crash_phases import ASK_PERSON, call, ended, said_by_agent
from tests.redis_scan import values_of
from tests.stack.agent_proc import (
    ASK,
    DOB,
    AgentFleet,
    awaiting_slot,
    caller_lines,
    running_fleet,
    wait_for_record,
)
from tests.stack.test_transfer import (
    BIRTH_YEAR,
    CALLER_TONE_HZ,
    DOB_FORMS,
    hears_tone,
    tone,
    wait_for,
)

pytestmark = pytest.mark.stack


@pytest.fixture
async def fleet(asterisk, redis, settings: Settings, tmp_path: Path) -> AsyncIterator[AgentFleet]:
    async with running_fleet(settings, redis, tmp_path) as f:
        yield f


async def test_a_takeover_resumes_with_the_encrypted_values_and_nothing_leaks(
    fleet: AgentFleet, settings: Settings, redis
) -> None:
    assert settings.session.encryption_key is not None, "the embedded stack generates a session key"
    say = await caller_lines(ASK, DOB, ASK_PERSON)
    phone = await AgentPhone("127.0.0.1", settings.stack.agent_port, mode="answer", ring_delay_s=0.5).start()
    try:
        a = await fleet.start("a")
        script = [
            WaitForAgent(), say[ASK], WaitForAgent(), Dtmf("5551234567#"), WaitForAgent(), say[DOB],
            WaitForAgent(quiet_s=1.0),  # "Thanks Dana ... What day would you like instead?"
            WaitForAgent(timeout_s=45, quiet_s=1.5),  # the new instance asks it again
            say[ASK_PERSON], Silence(2.0), Utterance(pcm=tone(CALLER_TONE_HZ, 30)),
        ]  # fmt: skip
        caller = call(settings, script)
        rec = await wait_for_record(
            fleet.store, lambda r: awaiting_slot(r) == "new_date" and said_by_agent(r, "What day"), 90,
            "the new-date question, after the date of birth was verified",
        )  # fmt: skip
        sid = rec.session_id
        a.kill()
        b = await fleet.start("b")
        agent = await phone.next_call(timeout=90)
        await wait_for(lambda: agent.answered_at is not None, 5, "the person answers")
        await wait_for(
            hears_tone(agent.rtp, CALLER_TONE_HZ, agent.answered_at), 30, "the person hears the caller"
        )
        await asyncio.wait_for(caller, 90)
        rec = await ended(fleet, sid)
    finally:
        await phone.stop()

    # the takeover went on from the new-date question: the date of birth came back decrypted
    lines = [e.text for e in rec.transcript if e.speaker == "agent"]
    resumed = next(i for i, t in enumerate(lines) if t.startswith(RESUME_APOLOGY))
    assert "What day" in lines[resumed] and not any("date of birth" in t for t in lines[resumed:]), lines
    assert "takeover.adopted" in b.log and rec.transfer and rec.transfer["outcome"] == "connected", (
        rec.transfer
    )

    # Redis: every key of the run (the call's hash, transcript, events, leases, indexes)
    prefix = fleet.store.keys.prefix
    stored = await values_of(redis, [k async for k in redis.scan_iter(match=f"{prefix}:*")])
    assert stored, "nothing of the call was found in Redis to scan"
    for form in DOB_FORMS:
        assert form.encode() not in stored, f"{form!r} is in Redis in clear"
    assert not BIRTH_YEAR.search(stored.decode("utf-8", "replace")), "the birth year is in Redis in clear"
    frames = rec.conversation_state["frames"]
    assert all(str(v).startswith("enc:") for f in frames for v in f.get("results", {}).values()), (
        "a tool result (the customer record) is stored in clear"
    )
    assert any(str(f["slots"].get("dob", "")).startswith("enc:") for f in frames), "dob not encrypted"

    # logs of both processes, the SIP headers the person's phone got
    logs = a.log + b.log
    assert "call." in logs and "takeover" in logs, "no log lines were captured to scan"
    iva = {k: v for k, v in agent.headers.items() if k.lower().startswith("x-iva-")}
    assert iva.get("X-IVA-Session") == sid or agent.header("X-IVA-Session") == sid, iva
    for form in DOB_FORMS:
        assert form not in logs, f"{form!r} in an agent's log"
        assert not any(form in v for v in iva.values()), f"{form!r} in the SIP headers {iva}"
    assert not BIRTH_YEAR.search(logs), "the birth year is in an agent's log"
    assert not any(BIRTH_YEAR.search(v) for v in iva.values()), f"the birth year in the SIP headers {iva}"

    # the TTS cache: no line rendered for this caller (their name, a read-back, the whisper)
    tts = make_tts(settings.speech.tts, settings.speech.cache_dir)
    assert isinstance(tts, CachedTts)
    personal = [t for t in lines if "Dana" in t or "555" in t or any(f in t for f in DOB_FORMS)]
    assert personal, lines
    written = [t for t in personal if tts.path_for(t).exists()]
    assert not written, f"prompts with caller data in the TTS cache: {written}"
