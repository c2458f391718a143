"""`make run`: the embedded stack, the demo backend and the agent, then one real demo call whose
conversation is printed; stays up for softphone calls until Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time

import numpy as np
from aiohttp import web
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ari_app import stack
from ari_app.config import Settings
from ari_app.service import Service
from ari_app.testcaller.caller import CallReport, Dtmf, Step, Utterance, WaitForAgent, place_call
from ari_app.web import links

console = Console()
DEMO_SECRET_ENV = "IVA_DEMO_SECRET"
CALLER_LINES = [
    "I need to reschedule my appointment",
    "April twelfth, nineteen eighty five",
    "next Wednesday",
    "eleven thirty",
    "yes please",
    "no thanks, goodbye",
]


async def caller_voice(texts: list[str]) -> dict[str, np.ndarray]:
    """The demo caller speaks with the second packaged voice (piper), so it sounds unlike the agent."""
    from ari_app.speech.settings import TtsSettings
    from ari_app.speech.tts import make_tts

    try:
        tts = make_tts(TtsSettings(engine="piper"))
    except Exception:
        return {}  # fall back to flite inside the test caller
    out = {}
    for t in texts:
        out[t] = np.frombuffer(b"".join([c async for c in tts.synthesize(t)]), dtype="<i2")
    return out


def demo_script(voices: dict[str, np.ndarray]) -> list[Step]:
    def say(text: str) -> Utterance:
        return Utterance(pcm=voices[text]) if text in voices else Utterance(text=text)

    lines = iter(CALLER_LINES)
    return [
        WaitForAgent(),
        say(next(lines)),
        WaitForAgent(),
        Dtmf("5551234567#"),
        *[step for text in lines for step in (WaitForAgent(), say(text))],
        WaitForAgent(timeout_s=6),
    ]


async def start_demo_backend(port: int = 8765) -> web.AppRunner:
    from ari_app.demo_backend.app import create_app

    os.environ.setdefault(DEMO_SECRET_ENV, "demo-secret-change-me")
    runner = web.AppRunner(create_app(":memory:"), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


def print_conversation(service: Service, report: CallReport | None) -> None:
    assert service.deps is not None
    lines = service.deps.transcripts[-1] if service.deps.transcripts else []
    t = Table(title="demo call", show_lines=False)
    t.add_column("who", style="bold")
    t.add_column("said")
    for who, text in lines:
        t.add_row(who, escape(text))
    console.print(t)
    if service.deps.turn_metrics:
        m = Table(title="per-turn timings (ms, from the end of the caller's speech)")
        for col in ("turn", "input", "transcript", "decided", "first audio", "speculative ASR"):
            m.add_column(col)
        for tm in service.deps.turn_metrics:
            m.add_row(str(tm.turn), tm.input, str(tm.asr_ms), str(tm.decide_ms), str(tm.first_audio_ms),
                      str(tm.speculative_hit))  # fmt: skip
        console.print(m)
    if report is not None:
        lat = [r.latency_s for r in report.responses() if r.latency_s is not None]
        if lat:
            lat_ms = ", ".join(f"{x * 1000:.0f}" for x in lat)
            console.print(f"on the wire, caller stops -> agent starts (ms): {lat_ms}")


async def run_demo(settings: Settings, *, stay_up: bool = True) -> int:
    t0 = time.monotonic()
    with console.status("starting Asterisk + Redis"):
        await asyncio.to_thread(stack.up, settings)
    backend = await start_demo_backend()
    service = Service(settings)
    with console.status("loading speech and understanding models, warming prompts"):
        await service.start()
    console.print(f"[green]agent ready[/] in {time.monotonic() - t0:.1f} s — placing the demo call")
    report = None
    try:
        script = demo_script(await caller_voice(CALLER_LINES))
        report = await place_call(settings.stack.extension, script, listen_s=0.5,
                                  sip_port=settings.stack.sip_port)  # fmt: skip
    except Exception as e:
        console.print(f"[red]demo call failed:[/] {e}")
    await asyncio.sleep(0.5)
    print_conversation(service, report)
    if stay_up:
        sip = f"{settings.stack.bind}:{settings.stack.sip_port}"
        page = "set web.token to enable it"
        finished = service.manager.finished if service.manager else []
        if settings.web.token is not None and finished:
            sid = finished[-1].info.session_id
            link = links.sign(sid, settings.web.token.get_secret_value(), settings.web.link_ttl_s)
            page = f"http://{settings.web.host}:{settings.web.port}/agent/{sid}?link={link}"
        console.print(
            f"\nThe agent keeps running. Call it from a softphone on this machine: register as user "
            f"[bold]softphone[/] at {sip} (password: stack.softphone_password) and dial "
            f'[bold]{settings.stack.extension}[/], or run: ari-app call "I need to check my order".\n'
            f"Agent page of the demo call: {page} (a transfer sends each call's own link to the agent's "
            f"phone in the X-IVA-Link header). Ctrl-C to stop."
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    await service.stop()
    await backend.cleanup()
    return 0 if report is not None else 1
