"""The agent (a real ``Service``) in its own process, so benchmarks can measure its CPU on its own
and the caller's timing is not disturbed by the agent's work in the same event loop.

Parent side: ``async with AgentProcess(flows) as agent: stats = await agent.stats()``.
Child side (``python -m benchmarks.common.agent_process FLOWS...``): starts the Service, prints
``READY``, then answers one JSON line per ``stats`` line on stdin and stops on ``quit`` / EOF.
Environment (ARI_APP_*) is inherited, so the child uses the same stack as the caller.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def cpu_seconds() -> float:
    """User + system CPU of this process, all threads (ASR and TTS run in executor threads)."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class AgentProcess:
    def __init__(
        self,
        flows: list[Path],
        *,
        env: dict[str, str] | None = None,
        log_path: Path | None = None,
        repo: Path | None = None,
    ) -> None:
        self.flows = flows
        self.repo = repo or REPO  # another checkout (e.g. a git worktree of an older commit): A/B runs
        self.env = {**os.environ, **(env or {})}
        self.log_path = log_path or Path("/tmp") / f"ari-app-bench-agent-{os.getpid()}.log"
        self.proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> AgentProcess:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self, timeout: float = 180.0) -> None:
        log = self.log_path.open("wb")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "benchmarks.common.agent_process", *map(str, self.flows),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=log,
            cwd=str(self.repo), env=self.env,
        )  # fmt: skip
        log.close()
        try:
            line = await asyncio.wait_for(self._readline(), timeout)
        except TimeoutError:
            await self.stop()
            raise RuntimeError(
                f"the agent did not start within {timeout:.0f} s; see {self.log_path}"
            ) from None
        if line != "READY":
            await self.stop()
            raise RuntimeError(f"the agent failed to start ({line or 'no output'}); see {self.log_path}")

    async def _readline(self) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        return (await self.proc.stdout.readline()).decode().strip()

    async def stats(self) -> dict[str, Any]:
        """{"cpu_s": ..., "wall": ..., "turn_metrics": [...], "calls": n} from the running agent."""
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(b"stats\n")
        await self.proc.stdin.drain()
        return json.loads(await asyncio.wait_for(self._readline(), 30))

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(b"quit\n")
            await self.proc.stdin.drain()
            await asyncio.wait_for(self.proc.wait(), 15)
        except (TimeoutError, ConnectionError):
            self.proc.kill()
            await self.proc.wait()


def process_health(service: Any) -> dict[str, Any]:
    """What a soak watches: memory, descriptors, and what the agent still holds."""
    with open("/proc/self/status") as f:
        rss_kb = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    manager = service.manager
    return {
        "rss_kb": rss_kb,
        "fds": len(os.listdir("/proc/self/fd")),
        "live_calls": len(manager.calls) if manager else 0,
        "ports_in_use": len(manager.ports.in_use) if manager else 0,
        "tasks": len(asyncio.all_tasks()),
    }


async def _child(flows: list[Path]) -> int:
    from ari_app import stage_cpu
    from ari_app.config import load_settings
    from ari_app.logs import configure_logging
    from ari_app.service import Service

    settings = load_settings()
    configure_logging(os.environ.get("ARI_APP_BENCH_LOG", "warning"))
    service = Service(settings, flows or None)
    try:
        await service.start()
    except Exception as e:  # reported to the parent as one line, not a traceback
        print(f"ERROR {type(e).__name__}: {e}", flush=True)
        return 1
    print("READY", flush=True)
    loop = asyncio.get_running_loop()
    try:
        while True:
            line = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
            if line in ("", "quit"):
                break
            if line == "stats":
                assert service.deps is not None
                out = {
                    "cpu_s": cpu_seconds(),
                    "stage_cpu_s": stage_cpu.snapshot(),
                    "wall": time.monotonic(),
                    "calls": len(service.deps.transcripts),  # the last RECENT_CALLS only
                    "turn_metrics": [dataclasses.asdict(m) for m in service.deps.turn_metrics],
                    "transcripts": list(service.deps.transcripts),
                    **process_health(service),
                }
                print(json.dumps(out, default=str), flush=True)
    finally:
        await service.stop()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(_child([Path(p) for p in sys.argv[1:]])))
