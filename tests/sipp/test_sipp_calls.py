"""sipp scenarios against the real Asterisk: a caller playing a speech pcap + RFC 4733 DTMF into
Echo, a caller without media, and sipp as the agent phone answering an ARI originate."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ari_app.config import Settings
from ari_app.testcaller import audio
from tests.sipp.run import SippError, make_media, run_sipp, run_sipp_async
from tests.testcaller.helpers import ari_client, wait_until

pytestmark = pytest.mark.stack


def test_sipp_caller_plays_speech_and_dtmf_into_echo(asterisk, tmp_path: Path) -> None:
    seconds = make_media(tmp_path / "media", audio.synthesize("I need to reschedule my appointment"))
    result = run_sipp(
        "caller",
        "1001",
        workdir=tmp_path,
        media_dir=tmp_path / "media",
        substitutions={"SPEECH_MS": str(round(seconds * 1000) + 200)},
        timeout=30,
    )
    assert result.ok, result.explain()
    messages = next(text for name, text in result.logs.items() if name.endswith("_messages.log"))
    assert "SIP/2.0 200 OK" in messages and "BYE sip:1001@" in messages


def test_sipp_caller_without_media(asterisk, tmp_path: Path) -> None:
    result = run_sipp(
        "caller_nomedia", "1001", workdir=tmp_path, substitutions={"HOLD_MS": "500"}, timeout=20
    )
    assert result.ok, result.explain()
    assert 0.5 <= result.elapsed_s < 10


def test_unknown_scenario_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SippError, match="scenario nope not found"):
        run_sipp("nope", "1001", workdir=tmp_path)


async def test_sipp_agent_answers_an_originate(asterisk, settings: Settings, tmp_path: Path) -> None:
    make_media(tmp_path / "media", audio.tone(300, 0.5))
    sipp = asyncio.create_task(
        run_sipp_async(
            "agent",
            workdir=tmp_path,
            remote=None,
            local_port=settings.stack.agent_port,
            media_dir=tmp_path / "media",
            timeout=20,
        )
    )
    await asyncio.sleep(0.5)  # let sipp bind 5080
    async with ari_client(settings) as ari:
        channel = await ari.originate_to_agent(timeout_s=5)
        assert await wait_until(lambda: _is_up(ari, channel["id"]), 5), "sipp agent never answered"
        await asyncio.sleep(1.0)
        status, _ = await ari.request("DELETE", f"/channels/{channel['id']}")
        assert status == 204
    result = await sipp
    assert result.ok, result.explain()


async def _is_up(ari, channel_id: str) -> bool:
    return any(c["id"] == channel_id and c["state"] == "Up" for c in await ari.channels())
