"""``ari-app call`` against the real stack: a clear error when no agent is running, and with an
in-process agent the greeting and the answer transcribed, with timings and the wire latency."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from ari_app.cli import app
from ari_app.config import Settings
from ari_app.dialog.settings import LlmSettings
from ari_app.service import Service
from ari_app.testcaller.cli_call import CallFailed, run_call

pytestmark = [pytest.mark.stack, pytest.mark.models]


async def test_no_agent_running_is_a_clear_error(asterisk, settings: Settings):
    with pytest.raises(CallFailed, match=r"no agent is running: start `ari-app serve`"):
        await run_call(settings, "hello", listen_s=0)


def test_cli_reports_no_agent_without_a_traceback(asterisk):
    result = CliRunner().invoke(app, ["call", "hello", "--listen", "0"])
    assert result.exit_code == 2, result.output
    assert "no agent is running" in result.output and "Traceback" not in result.output


async def test_call_prints_what_the_agent_said(asterisk, settings: Settings):
    # An LLM configured (never reachable, never needed here: the classifier knows this sentence)
    # is wired into the engine and changes nothing.
    configured = settings.model_copy(deep=True)
    configured.dialog.llm = LlmSettings(base_url="http://127.0.0.1:9/v1", timeout=0.3)
    service = Service(configured, with_store=False)
    await service.start()
    try:
        assert service.deps is not None and service.deps.engine.llm is not None
        transcript = await run_call(
            settings, "I need to reschedule my appointment", listen_s=1.0, asr=service.deps.asr
        )
    finally:
        await service.stop()
    lines = transcript.lines
    assert lines, "the agent said nothing"
    assert transcript.said_at_s is not None and lines[0].start_s < transcript.said_at_s
    assert "calling" in lines[0].text.lower()  # the greeting, before the caller spoke
    answer = next(ln for ln in lines if ln.latency_s is not None)
    assert answer.start_s > transcript.said_at_s and answer.latency_s > 0
    assert "phone number" in " ".join(ln.text.lower() for ln in lines if ln.start_s > transcript.said_at_s)
    printed = transcript.format()
    assert "caller: I need to reschedule my appointment" in printed and "answered" in printed
    print(printed)


async def test_bad_arguments_are_clear_errors(settings: Settings, tmp_path):
    with pytest.raises(CallFailed, match="nothing to say"):
        await run_call(settings)
    with pytest.raises(CallFailed, match="not both"):
        await run_call(settings, "hello", tmp_path / "x.wav")
    with pytest.raises(CallFailed, match="does not exist"):
        await run_call(settings, wav=tmp_path / "missing.wav")
