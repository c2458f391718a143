"""The embedded development stack: a real Asterisk 22 (its Debian sid rootfs, ``rootfs.py``, run
with chroot) and a real redis-server, both on loopback, started and stopped by pid. Our
``asterisk/`` + ``dialplan/`` config is rendered into the rootfs on every ``up``; ``down`` returns
only when the processes are gone and their ports are free.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from base64 import b64encode
from dataclasses import asdict, dataclass
from pathlib import Path

from ari_app.config import REDIS_PASSWORD_FILE, Settings, embedded_secret
from ari_app.logs import redact_url
from ari_app.rootfs import (
    REPO_ROOT,
    StackError,
    require_root,
    rootfs_dir,
    say,
    unpack_rootfs,
    versions_report,
)

CONF_DIRS = (REPO_ROOT / "asterisk", REPO_ROOT / "dialplan")


@dataclass
class StackState:
    asterisk_pid: int
    redis_pid: int
    ari_url: str
    sip: str
    redis_url: str
    rootfs: str
    started_at: float


def placeholders(s: Settings) -> dict[str, str]:
    return {
        "BIND": s.stack.bind,
        "ARI_PORT": str(s.stack.ari_port),
        "ARI_USERNAME": s.ari.username,
        "ARI_PASSWORD": s.ari.password.get_secret_value(),
        "ARI_APP": s.ari.app,
        "SIP_PORT": str(s.stack.sip_port),
        "RTP_MIN": str(s.stack.asterisk_rtp_min),
        "RTP_MAX": str(s.stack.asterisk_rtp_max),
        "AGENT_PORT": str(s.stack.agent_port),
        "CALLEE_PORT": str(s.stack.callee_port),
        "EXTENSION": s.stack.extension,
        "SOFTPHONE_PASSWORD": s.stack.softphone_password.get_secret_value(),
        "OUTBOUND_APP": s.ari.outbound_app,
        "WORKER_USERNAME": s.ari.worker_username,
        "WORKER_PASSWORD": s.ari.worker_password.get_secret_value(),
        "WORKER_PATH": s.ari.worker_path,
        "WORKERS_PORT": str(s.stack.workers_port),
        "WORKERS_EXTENSION": s.stack.workers_extension,
        "SYSTEM_NAME_LINE": f"systemname = {s.stack.system_name}" if s.stack.system_name else ";",
    }


def _loopback_bind(host: str) -> bool:
    return host.startswith("127.") or host in ("::1", "localhost")


def render_config(s: Settings, dest: Path) -> list[Path]:
    """Write our Asterisk config with values from settings into ``dest`` (over Debian's files)."""
    dest.mkdir(parents=True, exist_ok=True)
    values = placeholders(s)
    written = []
    for d in CONF_DIRS:
        for src in sorted(d.glob("*.conf")):
            text = src.read_text()
            if not _loopback_bind(s.stack.bind):  # unauthenticated lab endpoints never face a network
                text = re.sub(r"; @@LAB-ONLY-BEGIN@@.*?; @@LAB-ONLY-END@@\n",
                              "; (lab-only endpoint left out: stack.bind is not loopback)\n", text, flags=re.S)  # fmt: skip
            text = text.replace("; @@LAB-ONLY-BEGIN@@\n", "").replace("; @@LAB-ONLY-END@@\n", "")
            for k, v in values.items():
                text = text.replace(f"@@{k}@@", v)
            out = dest / src.name
            out.write_text(text)
            out.chmod(0o640)
            written.append(out)
    return written


# --------------------------------------------------------------------------- processes


def _state_file(s: Settings) -> Path:
    return s.stack.run_dir / "stack.json"


def _stat_fields(path: Path) -> list[str]:
    """The fields of a ``/proc/.../stat`` after ``(comm)`` (comm may hold spaces and parens):
    [0] state, [1] ppid, [2] pgrp, [3] session, ..., [19] starttime."""
    return path.read_text().rpartition(")")[2].split()


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs code. A zombie counts as gone, but only once all its threads
    are: the thread group leader shows ``Z`` as soon as it exits itself while the other threads
    may still be tearing down (holding sockets, writing files)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except FileNotFoundError:  # it has just gone, or there is no /proc to ask (then trust kill)
        return not Path("/proc/self").exists()
    except OSError:
        return True
    for task in tasks:
        try:
            if _stat_fields(task / "stat")[0] not in ("Z", "X"):
                return True
        except (OSError, IndexError):
            continue  # that thread has just gone
    return False


def read_state(s: Settings) -> StackState | None:
    try:
        return StackState(**json.loads(_state_file(s).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _port_error(host: str, port: int, kind: int) -> OSError | None:
    """Why ``port`` cannot be bound (the way our servers bind it), or ``None`` when it is free."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as e:
            return e
    return None


def _check_port_free(host: str, port: int, kind: int, what: str) -> None:
    if e := _port_error(host, port, kind):
        proto = "UDP" if kind == socket.SOCK_DGRAM else "TCP"
        raise StackError(
            f"{proto} port {host}:{port} ({what}) is already in use: {e.strerror}. "
            f"Stop whatever holds it or change the port in the config"
        )


def _ari_ready(s: Settings) -> bool:
    url = f"http://{s.stack.bind}:{s.stack.ari_port}/ari/asterisk/info"
    token = b64encode(f"{s.ari.username}:{s.ari.password.get_secret_value()}".encode()).decode()
    req = urllib.request.Request(url, headers={"Authorization": f"Basic {token}"})
    try:
        with urllib.request.urlopen(req, timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def _redis_ready(s: Settings, host: str) -> bool:
    try:
        with socket.create_connection((host, s.stack.redis_port), timeout=0.5) as c:
            c.sendall(f"AUTH {redis_password(s)}\r\nPING\r\n".encode())
            got = b""
            while b"PONG" not in got and len(got) < 64:
                chunk = c.recv(64)
                if not chunk:
                    break
                got += chunk
            return got.startswith(b"+OK") and b"+PONG" in got
    except OSError:
        return False


def redis_password(s: Settings) -> str:
    return embedded_secret(s.stack, REDIS_PASSWORD_FILE)


def _redis_command(s: Settings) -> list[str]:
    """redis-server with a password (in a 0600 config file, not on the command line for ps)."""
    run = s.stack.run_dir
    conf = run / "redis.conf"
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"requirepass {redis_password(s)}\n")
    return ["redis-server", str(conf), "--bind", s.stack.bind, "--port", str(s.stack.redis_port),
            "--dir", str(run / "redis"), "--appendonly", "yes", "--save", "", "--daemonize", "no",
            "--protected-mode", "yes"]  # fmt: skip


def _wait(pred, timeout: float, what: str, pid: int, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        if not _alive(pid):
            tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
            raise StackError(f"{what} exited during start-up; last log lines:\n{tail}")
        time.sleep(0.1)
    raise StackError(f"{what} did not become ready within {timeout:.0f} s (log: {log})")


def _starttime(pid: int) -> str | None:
    try:
        return _stat_fields(Path(f"/proc/{pid}/stat"))[19]
    except (OSError, IndexError):
        return None


def _reap(pid: int) -> bool:
    """Collect ``pid`` if it is our child (``up`` ran in this process), so it is no zombie.
    False only for a child of ours that cannot be collected yet."""
    try:
        return os.waitpid(pid, os.WNOHANG)[0] == pid
    except ChildProcessError:  # not our child, or collected already
        return True


def _session_members(sid: int) -> list[int]:
    """Processes (other than ``sid``) in the session ``sid``: children our processes started."""
    members = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit() and int(p.name) != sid:
            try:
                if int(_stat_fields(p / "stat")[3]) == sid:
                    members.append(int(p.name))
            except (OSError, IndexError, ValueError):
                continue
    return members


def _stop(pids: list[int], timeout: float = 5.0, kill_timeout: float = 5.0) -> None:
    """SIGTERM each pid (and what runs in its session), wait until every one is really gone
    (collected if it is our child, else at most a zombie with no thread left: its parent's job),
    SIGKILL what is left after ``timeout``."""
    targets: dict[int, str | None] = {}  # pid -> its start time, so a recycled pid is not waited on
    for pid in pids:
        if not _alive(pid):
            _reap(pid)
            continue
        for p in (pid, *_session_members(pid)):
            targets[p] = _starttime(p)

    def left() -> list[int]:
        out = []
        for p, started in targets.items():
            if _starttime(p) != started:
                continue  # gone and collected (or the pid was recycled)
            # A child of ours is collected once its last thread is gone too, then it is done.
            if _alive(p) or not _reap(p):
                out.append(p)
        return out

    def signal_all(sig: int) -> None:
        for p in left():
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass

    def gone_within(seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while left():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    signal_all(signal.SIGTERM)
    if gone_within(timeout):
        return
    say(f"pids {left()} still there {timeout:.0f} s after SIGTERM: sending SIGKILL")
    signal_all(signal.SIGKILL)
    if not gone_within(kill_timeout):
        raise StackError(
            f"pids {left()} are still there {kill_timeout:.0f} s after SIGKILL (stuck in the kernel?)"
        )


def _kill(pid: int, timeout: float = 5.0) -> None:
    _stop([pid], timeout)


def _stack_ports(s: Settings) -> list[tuple[int, int, str]]:
    return [
        (s.stack.ari_port, socket.SOCK_STREAM, "Asterisk ARI/HTTP"),
        (s.stack.sip_port, socket.SOCK_DGRAM, "Asterisk SIP"),
        (s.stack.redis_port, socket.SOCK_STREAM, "Redis"),
    ]


def _wait_ports_free(s: Settings, ports: list[tuple[int, int, str]], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    busy = ports
    while busy:
        busy = [p for p in busy if _port_error(s.stack.bind, p[0], p[1])]
        if not busy or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    for port, _, what in busy:  # not ours any more: `up` will name it if it is still taken
        say(f"port {s.stack.bind}:{port} ({what}) is still in use after our processes exited")


def up(s: Settings) -> StackState:
    """Start Asterisk and Redis (idempotent: an already running stack is returned as is)."""
    state = read_state(s)
    if state and _alive(state.asterisk_pid) and _alive(state.redis_pid):
        return state
    if state:  # half-dead stack from an earlier run: clean it up first
        down(s)
    require_root("the embedded Asterisk")
    if not shutil.which("redis-server"):
        raise StackError("redis-server is not installed (apt-get install redis-server)")
    b = s.stack.bind
    for port, kind, what in _stack_ports(s):
        _check_port_free(b, port, kind, what)

    root, ast = start_asterisk(s)
    run = s.stack.run_dir
    (run / "redis").mkdir(exist_ok=True)
    redis_log = run / "redis.log"
    red = _spawn(_redis_command(s), redis_log, "wb")
    state = StackState(
        asterisk_pid=ast.pid,
        redis_pid=red.pid,
        ari_url=f"http://{b}:{s.stack.ari_port}/ari",
        sip=f"{b}:{s.stack.sip_port}",
        redis_url=f"redis://:{redis_password(s)}@{b}:{s.stack.redis_port}/0",
        rootfs=str(root),
        started_at=time.time(),
    )
    _state_file(s).write_text(json.dumps(asdict(state)))
    try:
        wait_asterisk(s, ast.pid)
        _wait(lambda: _redis_ready(s, b), 10, "redis-server", red.pid, redis_log)
    except StackError:
        down(s)
        raise
    return state


def start_asterisk(s: Settings) -> tuple[Path, subprocess.Popen[bytes]]:
    """Unpack the rootfs for ``s``, render our config into it and start Asterisk (not waiting
    for it: ``wait_asterisk``). Logs to run_dir/asterisk.log."""
    root = unpack_rootfs(s)
    render_config(s, root / "etc/asterisk")
    for d in ("run/asterisk", "var/log/asterisk", "var/spool/asterisk", "var/lib/asterisk"):
        (root / d).mkdir(parents=True, exist_ok=True)
    s.stack.run_dir.mkdir(parents=True, exist_ok=True)
    log = s.stack.run_dir / "asterisk.log"
    return root, _spawn(["chroot", str(root), "/usr/sbin/asterisk", "-f", "-n"], log, "wb")


def wait_asterisk(s: Settings, pid: int) -> None:
    """Until Asterisk ``pid`` answers ARI with our credentials (StackError with its log if not)."""
    _wait(lambda: _ari_ready(s), s.stack.start_timeout, "Asterisk", pid, s.stack.run_dir / "asterisk.log")


def down(s: Settings) -> list[int]:
    """Stop exactly the processes ``up`` started (by pid) and return the pids that were stopped,
    once they are really gone (SIGTERM, SIGKILL after 5 s) and their ports are free again, so an
    ``up`` right after works."""
    from ari_app import workers_stack

    stopped = workers_stack.down(s)  # the workers and their HAProxy first (they use Redis)
    stopped += _sentinel().down(s)
    for box in _boxes().running_boxes(s):  # then the other Asterisk boxes
        stopped += _boxes().down_box(s, box.index)
    state = read_state(s)
    if state:
        stopped += [pid for pid in (state.asterisk_pid, state.redis_pid) if _alive(pid)]
        _stop([state.asterisk_pid, state.redis_pid])
        if stopped:
            _wait_ports_free(s, _stack_ports(s))
    _state_file(s).unlink(missing_ok=True)
    return stopped


def restart_redis(s: Settings) -> StackState:
    """Stop and start only redis-server (tests of Redis outages use it)."""
    state = read_state(s)
    if not state:
        raise StackError("the stack is not running")
    _kill(state.redis_pid)
    _wait_ports_free(s, [p for p in _stack_ports(s) if p[2] == "Redis"])
    log = s.stack.run_dir / "redis.log"
    red = _spawn(_redis_command(s), log, "ab")
    state.redis_pid = red.pid
    _state_file(s).write_text(json.dumps(asdict(state)))
    _wait(lambda: _redis_ready(s, s.stack.bind), 10, "redis-server", red.pid, log)
    return state


def restart_asterisk(s: Settings) -> StackState:
    """Stop and start only Asterisk, like a PBX restart (tests of Asterisk restarts use it):
    every call it held is gone, our ARI websocket must find it again."""
    state = read_state(s)
    if not state:
        raise StackError("the stack is not running")
    _stop([state.asterisk_pid])
    _wait_ports_free(s, [p for p in _stack_ports(s) if p[2] != "Redis"])
    log = s.stack.run_dir / "asterisk.log"
    ast = _spawn(["chroot", state.rootfs, "/usr/sbin/asterisk", "-f", "-n"], log, "ab")
    state.asterisk_pid = ast.pid
    _state_file(s).write_text(json.dumps(asdict(state)))
    _wait(lambda: _ari_ready(s), s.stack.start_timeout, "Asterisk", ast.pid, log)
    return state


def _spawn(
    cmd: list[str], log: Path, mode: str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """A stack process in its own session (a Ctrl-C in the terminal does not reach it)."""
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log.open(mode), stderr=subprocess.STDOUT,
                            start_new_session=True, env=env)  # fmt: skip


def status(s: Settings) -> dict:
    """What runs where, and the rootfs's Asterisk versions (``versions``, see ``versions_report``)."""
    state = read_state(s)
    versions = versions_report(s)
    if not state:
        return {"running": False, "versions": versions}
    return {
        "running": _alive(state.asterisk_pid) and _alive(state.redis_pid),
        "asterisk": {"pid": state.asterisk_pid, "alive": _alive(state.asterisk_pid)},
        "redis": {"pid": state.redis_pid, "alive": _alive(state.redis_pid)},
        "ari_url": state.ari_url,
        "ari_app": s.ari.app,
        "sip": f"udp:{state.sip}",
        "call_extension": f"sip:{s.stack.extension}@{state.sip}",
        "agent_phone": f"sip:agent@{s.stack.bind}:{s.stack.agent_port} (queue support)",
        "redis_url": redact_url(state.redis_url),
        "rootfs": state.rootfs,
        "versions": versions,
        "workers": _workers_status(s),
        "boxes": [asdict(b) for b in _boxes().running_boxes(s)],
        "sentinel": _sentinel().status(s),
        "workers_extension": f"sip:{s.stack.workers_extension}@{state.sip}",
    }


def _sentinel():  # imports this module: imported when asked
    from ari_app import sentinel_stack

    return sentinel_stack


def _boxes():  # the boxes module imports this one: imported when asked
    from ari_app import boxes

    return boxes


def _workers_status(s: Settings) -> dict | None:
    from ari_app import workers_stack

    return workers_stack.status(s)


def asterisk_cli(s: Settings, command: str) -> str:
    """Run one Asterisk CLI command in the running embedded Asterisk (``asterisk -rx``)."""
    root = rootfs_dir(s)
    r = subprocess.run(["chroot", str(root), "/usr/sbin/asterisk", "-rx", command],
                       capture_output=True, text=True, timeout=10)  # fmt: skip
    return r.stdout
