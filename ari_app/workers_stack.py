"""The embedded stack's workers: N agent processes in worker mode (ari.mode = outbound), each on
its own port, behind a real HAProxy on the port Asterisk's outbound websocket connects to
(``stack.workers_port``; websocket_client.conf [ari-workers]). ``ari-app stack up --workers N``
starts them, ``stack down`` stops them (by pid, like the rest of the stack).

Why HAProxy: websockets are long-lived, so ``balance leastconn`` spreads calls by how many each
worker holds; ``option httpchk GET /readyz`` stops sending to a worker that is loading, has lost
Redis or drains; a 503 from a worker that began draining between two checks is retried on
another one (``retry-on``), and ``timeout tunnel`` keeps an hour-long call's socket open.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ari_app.config import Settings
from ari_app.rootfs import StackError
from ari_app.stack import _alive, _check_port_free, _spawn, _stop

HEALTH_INTERVAL_MS = 1000  # /readyz checks: a worker that stops being ready gets no call after ~1 s
TUNNEL_TIMEOUT = "4h"  # longest call (calls.max_call_s is 1 h) plus a person's time


@dataclass
class WorkersState:
    haproxy_pid: int
    worker_pids: list[int] = field(default_factory=list)
    worker_ports: list[int] = field(default_factory=list)
    listen: str = ""


def haproxy_config(s: Settings, ports: list[int], host: str = "127.0.0.1") -> str:
    """HAProxy in front of the workers on ``ports`` (their web port: /ari/ws and /readyz)."""
    servers = "\n".join(
        f"    server w{i} {host}:{p} check inter {HEALTH_INTERVAL_MS} fall 1 rise 1"
        for i, p in enumerate(ports)
    )
    return f"""# written by ari-app (workers_stack.py): Asterisk's outbound ARI websockets -> workers
global
    maxconn 4000

defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    # A call's websocket lives as long as the call.
    timeout tunnel {TUNNEL_TIMEOUT}
    timeout client-fin 5s
    retries 2
    option redispatch 1
    # A worker that refused (draining, 503) or is gone: try another before Asterisk sees a failure.
    retry-on conn-failure empty-response 503

frontend ari_workers
    bind {s.stack.bind}:{s.stack.workers_port}
    default_backend workers

backend workers
    balance leastconn
    option httpchk GET /readyz
    http-check expect status 200
{servers}
"""


def _state_file(s: Settings) -> Path:
    return s.stack.run_dir / "workers.json"


def read_state(s: Settings) -> WorkersState | None:
    try:
        return WorkersState(**json.loads(_state_file(s).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def start_haproxy(s: Settings, ports: list[int], name: str = "haproxy") -> int:
    """HAProxy on stack.workers_port in front of ``ports``; returns its pid once it listens."""
    exe = shutil.which("haproxy")
    if exe is None:
        raise StackError("haproxy is not installed (apt-get install haproxy; scripts/bootstrap.sh does)")
    _check_port_free(s.stack.bind, s.stack.workers_port, socket.SOCK_STREAM, "HAProxy for the workers")
    run = s.stack.run_dir
    run.mkdir(parents=True, exist_ok=True)
    cfg = run / f"{name}.cfg"
    cfg.write_text(haproxy_config(s, ports))
    check = _spawn([exe, "-c", "-q", "-f", str(cfg)], run / f"{name}.log", "wb")
    if check.wait(10) != 0:
        raise StackError(f"haproxy refused {cfg}: {(run / f'{name}.log').read_text()[-1000:]}")
    proc = _spawn([exe, "-db", "-f", str(cfg)], run / f"{name}.log", "ab")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((s.stack.bind, s.stack.workers_port), timeout=0.5):
                return proc.pid
        except OSError:
            if proc.poll() is not None:
                raise StackError(f"haproxy exited: {(run / f'{name}.log').read_text()[-1000:]}") from None
            time.sleep(0.1)
    raise StackError(f"haproxy did not listen on {s.stack.bind}:{s.stack.workers_port} within 10 s")


def worker_env(s: Settings, port: int) -> dict[str, str]:
    """What makes `ari-app serve` a worker on ``port`` (plus the caller's own environment)."""
    return {**os.environ, "ARI_APP_ARI__MODE": "outbound", "ARI_APP_WEB__PORT": str(port),
            "ARI_APP_WEB__HOST": s.stack.bind}  # fmt: skip


def ready(host: str, port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/readyz", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def check_asterisk(s: Settings) -> None:
    """The running Asterisk must know the outbound websocket (config rendered at `stack up`; a
    stack started before it was added has none: `stack up` leaves a running stack as it is)."""
    from ari_app.stack import asterisk_cli

    listing = asterisk_cli(s, "ari show outbound-websockets")
    uri = f"ws://{s.stack.bind}:{s.stack.workers_port}{s.ari.worker_path}"
    if not any(s.ari.outbound_app in line and uri in line for line in listing.splitlines()):
        raise StackError(
            f"the running Asterisk has no outbound websocket {s.ari.outbound_app!r} to {uri} (it "
            "was started with an older config): run `ari-app stack down`, then `ari-app stack up "
            "--workers N`"
        )


def up(s: Settings, n: int, timeout: float = 300.0, env: dict[str, str] | None = None) -> WorkersState:
    """Start ``n`` workers and HAProxy in front of them (the stack itself must be up); ``env``:
    more environment for the workers (the sentinels' addresses with `--sentinel`)."""
    if read_state(s) is not None:
        down(s)
    check_asterisk(s)
    ports = [s.stack.worker_port_base + i for i in range(n)]
    for p in ports:
        _check_port_free(s.stack.bind, p, socket.SOCK_STREAM, "an ari-app worker")
    run = s.stack.run_dir
    serve = [sys.executable, "-c", "from ari_app.cli import app; app()", "serve"]
    procs = [
        _spawn(serve, run / f"worker-{i}.log", "wb", env={**worker_env(s, p), **(env or {})})
        for i, p in enumerate(ports)
    ]
    state = WorkersState(haproxy_pid=0, worker_pids=[p.pid for p in procs], worker_ports=ports,
                         listen=f"{s.stack.bind}:{s.stack.workers_port}")  # fmt: skip
    _state_file(s).write_text(json.dumps(asdict(state)))
    try:
        state.haproxy_pid = start_haproxy(s, ports)
        _state_file(s).write_text(json.dumps(asdict(state)))
        deadline = time.monotonic() + timeout
        while not all(ready(s.stack.bind, p) for p in ports):
            dead = [i for i, pr in enumerate(procs) if pr.poll() is not None]
            if dead:
                tail = (run / f"worker-{dead[0]}.log").read_text(errors="replace")[-1500:]
                raise StackError(f"worker {dead[0]} exited during start-up; last log lines:\n{tail}")
            if time.monotonic() > deadline:
                raise StackError(f"workers not ready within {timeout:.0f} s (logs: {run}/worker-*.log)")
            time.sleep(0.5)
    except StackError:
        down(s)
        raise
    return state


def down(s: Settings, drain_timeout: float = 30.0) -> list[int]:
    """Stop HAProxy, then the workers (SIGTERM: each drains its calls for up to
    ``drain_timeout`` s, then SIGKILL)."""
    state = read_state(s)
    stopped: list[int] = []
    if state:
        pids = [state.haproxy_pid, *state.worker_pids]
        stopped = [p for p in pids if p and _alive(p)]
        if state.haproxy_pid:
            _stop([state.haproxy_pid])
        _stop(state.worker_pids, timeout=drain_timeout)
    _state_file(s).unlink(missing_ok=True)
    return stopped


def status(s: Settings) -> dict | None:
    state = read_state(s)
    if state is None:
        return None
    return {
        "listen": state.listen,
        "haproxy": {"pid": state.haproxy_pid, "alive": bool(state.haproxy_pid) and _alive(state.haproxy_pid)},
        "workers": [
            {"pid": pid, "port": port, "alive": _alive(pid), "ready": ready(s.stack.bind, port)}
            for pid, port in zip(state.worker_pids, state.worker_ports, strict=False)
        ],
    }
