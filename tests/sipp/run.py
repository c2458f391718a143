"""Run sipp scenarios on loopback as subprocesses: substitute placeholders (MEDIA_DIR, SPEECH_MS,
HOLD_MS) into a copy of the scenario, run ``sipp`` with a timeout, return exit code + logs."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ari_app.testcaller import audio
from tests.sipp.pcap import write_dtmf_pcap, write_speech_pcap

SCENARIO_DIR = Path(__file__).resolve().parent
DEFAULTS = {"SPEECH_MS": "4000", "HOLD_MS": "2000"}


class SippError(Exception):
    """sipp cannot be run (not installed, unknown scenario, ...)."""


@dataclass
class SippResult:
    returncode: int | None  # None = killed on timeout
    stdout: str
    stderr: str
    logs: dict[str, str] = field(default_factory=dict)  # sipp's *_messages.log / *_errors.log by name
    cmd: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def explain(self) -> str:
        """Everything needed to see why a scenario failed, for assertion messages."""
        logs = "\n".join(f"--- {name}\n{text[-3000:]}" for name, text in self.logs.items())
        return (
            f"sipp exit {self.returncode} after {self.elapsed_s:.1f}s: {' '.join(self.cmd)}\n"
            f"--- stderr\n{self.stderr[-2000:]}\n{logs}"
        )


def free_udp_port(host: str = "127.0.0.1", pair: bool = False) -> int:
    """A free UDP port (even and with port+2 free too when ``pair``: sipp binds -mp and -mp+2)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if not pair:
            return port
        if port % 2 == 0 and port + 2 < 65536:
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    s.bind((host, port + 2))
                return port
            except OSError:
                continue
    raise SippError("no free UDP port on loopback")


def make_media(media_dir: Path, speech: np.ndarray | None = None) -> float:
    """Write speech_ulaw.pcap, dtmf5.pcap and agent_600hz.pcap; return the speech length (s)."""
    media_dir.mkdir(parents=True, exist_ok=True)
    if speech is None:
        speech = audio.synthesize("I need to reschedule my appointment")
    write_speech_pcap(media_dir / "speech_ulaw.pcap", speech)
    write_dtmf_pcap(media_dir / "dtmf5.pcap", "5")
    write_speech_pcap(media_dir / "agent_600hz.pcap", audio.tone(600, 2.0))
    return len(speech) / audio.RATE


def render_scenario(scenario: str | Path, workdir: Path, substitutions: Mapping[str, str]) -> Path:
    src = Path(scenario)
    if not src.is_absolute() and not src.exists():
        src = SCENARIO_DIR / (src.name if src.suffix == ".xml" else f"{src}.xml")
    if not src.exists():
        raise SippError(f"sipp scenario {scenario} not found (looked in {SCENARIO_DIR})")
    text = src.read_text()
    for key, value in {**DEFAULTS, **substitutions}.items():
        text = text.replace(key, str(value))
    out = workdir / src.name
    out.write_text(text)
    return out


def sipp_command(
    scenario: Path,
    service: str | None,
    *,
    remote: str | None,
    local_port: int,
    media_port: int,
    calls: int,
    extra_args: Sequence[str],
) -> list[str]:
    exe = shutil.which("sipp")
    if exe is None:
        raise SippError("sipp is not installed (Debian package: sip-tester)")
    cmd = [
        exe,
        "-sf",
        str(scenario),
        "-i",
        "127.0.0.1",
        "-p",
        str(local_port),
        "-mi",
        "127.0.0.1",
        "-mp",
        str(media_port),
        "-m",
        str(calls),
        "-nostdin",
        "-trace_err",
        "-trace_msg",
    ]
    if service is not None:
        cmd += ["-s", service]
    cmd += list(extra_args)
    if remote:
        cmd.append(remote)
    return cmd


def _collect_logs(workdir: Path) -> dict[str, str]:
    return {p.name: p.read_text(errors="replace") for p in sorted(workdir.glob("*.log"))}


def _prepare(
    scenario: str | Path,
    service: str | None,
    workdir: Path,
    remote: str | None,
    local_port: int | None,
    media_port: int | None,
    media_dir: Path | None,
    calls: int,
    substitutions: Mapping[str, str] | None,
    extra_args: Sequence[str],
) -> list[str]:
    workdir.mkdir(parents=True, exist_ok=True)
    subs = {"MEDIA_DIR": str(media_dir or workdir), **(substitutions or {})}
    rendered = render_scenario(scenario, workdir, subs)
    return sipp_command(
        rendered,
        service,
        remote=remote,
        local_port=local_port or free_udp_port(),
        media_port=media_port or free_udp_port(pair=True),
        calls=calls,
        extra_args=extra_args,
    )


def run_sipp(scenario: str | Path, service: str | None = None, **kwargs: Any) -> SippResult:
    """Run one sipp scenario to completion (blocking; same arguments as ``run_sipp_async``)."""
    return asyncio.run(run_sipp_async(scenario, service, **kwargs))


async def run_sipp_async(
    scenario: str | Path,
    service: str | None = None,
    *,
    workdir: Path,
    remote: str | None = "127.0.0.1:5060",
    local_port: int | None = None,
    media_port: int | None = None,
    media_dir: Path | None = None,
    calls: int = 1,
    timeout: float = 30.0,
    substitutions: Mapping[str, str] | None = None,
    extra_args: Sequence[str] = (),
) -> SippResult:
    """Run one sipp scenario without blocking the event loop. ``remote=None`` for UAS scenarios."""
    cmd = _prepare(
        scenario,
        service,
        workdir,
        remote,
        local_port,
        media_port,
        media_dir,
        calls,
        substitutions,
        extra_args,
    )
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *cmd, cwd=workdir, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
        code: int | None = proc.returncode
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        out, err = await proc.communicate()
        code, err = None, err + f"\nkilled after {timeout:g} s timeout".encode()
    return SippResult(
        code,
        out.decode(errors="replace"),
        err.decode(errors="replace"),
        _collect_logs(workdir),
        cmd,
        time.monotonic() - started,
    )
