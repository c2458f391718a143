"""The embedded development stack: a real Asterisk 22 (Debian sid rootfs run with chroot) and a
real redis-server, both on loopback, started and stopped by pid.

Why a chroot: Debian 12 has no Asterisk package and sid's must not be installed into the host
(it would upgrade libc). ``mmdebstrap`` builds a sid root filesystem once; it is cached as a
tarball keyed by our pinned package list, unpacked next to it, and our ``asterisk/`` +
``dialplan/`` config is rendered into it on every ``up``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from base64 import b64encode
from dataclasses import asdict, dataclass
from pathlib import Path

from ari_app.config import Settings

ROOTFS_PACKAGES = ("asterisk", "asterisk-moh-opsound-gsm")
ROOTFS_SUITE = "sid"
REPO_ROOT = Path(__file__).resolve().parent.parent
CONF_DIRS = (REPO_ROOT / "asterisk", REPO_ROOT / "dialplan")


class StackError(Exception):
    """Something prevents the stack from starting; the message says what and how to fix it."""


@dataclass
class StackState:
    asterisk_pid: int
    redis_pid: int
    ari_url: str
    sip: str
    redis_url: str
    rootfs: str
    started_at: float


def _say(msg: str) -> None:
    print(f"[stack] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- rootfs


def rootfs_key() -> str:
    return hashlib.sha256(f"{ROOTFS_SUITE}:{','.join(ROOTFS_PACKAGES)}".encode()).hexdigest()[:12]


def tarball_path(s: Settings) -> Path:
    return s.stack.cache_dir / f"asterisk-rootfs-{rootfs_key()}.tar.zst"


def rootfs_dir(s: Settings) -> Path:
    # Unpacked per run dir, so two stacks (e.g. a test's private one) never share Asterisk's
    # control socket or astdb; the tarball in the cache is shared and read-only.
    return s.stack.run_dir / "rootfs"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _tarball_ok(tar: Path) -> bool:
    sidecar = tar.with_suffix(tar.suffix + ".sha256")
    if not tar.exists() or not sidecar.exists():
        return False
    return sidecar.read_text().strip() == _sha256(tar)


def _require_root(what: str) -> None:
    if os.geteuid() != 0:
        raise StackError(f"{what} needs root (chroot); run as root or point ari-app at your own Asterisk")


def build_rootfs(s: Settings, force: bool = False) -> Path:
    """Build (or reuse) the cached Asterisk rootfs tarball; rebuilt when missing or corrupt."""
    tar = tarball_path(s)
    if not force and _tarball_ok(tar):
        return tar
    if tar.exists():
        _say(f"cached rootfs {tar} is incomplete or corrupt: rebuilding")
    _require_root("building the Asterisk rootfs")
    if not shutil.which("mmdebstrap"):
        raise StackError("mmdebstrap is not installed (apt-get install mmdebstrap zstd)")
    s.stack.cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = tar.with_suffix(".partial.zst")
    cmd = [
        "mmdebstrap", "--variant=essential",
        "--aptopt=Acquire::Check-Valid-Until \"false\"",
        "--aptopt=Acquire::Retries \"3\"",
        "--dpkgopt=path-exclude=/usr/share/man/*",
        "--dpkgopt=path-exclude=/usr/share/doc/*",
        "--dpkgopt=path-include=/usr/share/doc/*/copyright",
        "--dpkgopt=path-exclude=/usr/share/locale/*",
        f"--include={','.join(ROOTFS_PACKAGES)}",
        ROOTFS_SUITE, str(tmp),
    ]  # fmt: skip
    if s.stack.mirror:
        cmd.append(s.stack.mirror)
    for attempt in (1, 2):
        _say(f"building the Asterisk 22 rootfs from Debian {ROOTFS_SUITE} (attempt {attempt}, ~1-2 min)")
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout
        tail: list[str] = []
        for line in proc.stdout:
            line = line.rstrip()
            tail = [*tail[-20:], line]
            if line.startswith("I:") or "Get:" in line[:8]:
                _say(f"  {line[:110]}")
        if proc.wait() == 0:
            tmp.replace(tar)
            tar.with_suffix(tar.suffix + ".sha256").write_text(_sha256(tar))
            shutil.rmtree(rootfs_dir(s), ignore_errors=True)
            _say(f"rootfs built in {time.monotonic() - t0:.0f} s: {tar} ({tar.stat().st_size >> 20} MB)")
            return tar
        tmp.unlink(missing_ok=True)
    raise StackError(
        "the Debian mirror could not provide the Asterisk rootfs (mmdebstrap failed twice):\n  "
        + "\n  ".join(tail[-8:])
        + "\nsid may be temporarily uninstallable; retry later or set stack.mirror"
    )


def unpack_rootfs(s: Settings) -> Path:
    tar = build_rootfs(s)
    root = rootfs_dir(s)
    marker = root / ".ari-app-unpacked"
    if marker.exists() and marker.read_text() == tar.name and (root / "usr/sbin/asterisk").exists():
        return root
    _say(f"unpacking {tar.name}")
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    try:
        subprocess.run(["tar", "--zstd", "-xpf", str(tar), "-C", str(root)], check=True, capture_output=True)
    except subprocess.CalledProcessError as e:
        tar.unlink(missing_ok=True)  # corrupt despite the checksum: force a rebuild next time
        raise StackError(
            f"could not unpack {tar}: {e.stderr.decode()[-300:]}; it was removed, retry"
        ) from None
    marker.write_text(tar.name)
    return root


# --------------------------------------------------------------------------- config


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
        "EXTENSION": s.stack.extension,
        "SOFTPHONE_PASSWORD": s.stack.softphone_password.get_secret_value(),
    }


def render_config(s: Settings, dest: Path) -> list[Path]:
    """Write our Asterisk config with values from settings into ``dest`` (over Debian's files)."""
    dest.mkdir(parents=True, exist_ok=True)
    values = placeholders(s)
    written = []
    for d in CONF_DIRS:
        for src in sorted(d.glob("*.conf")):
            text = src.read_text()
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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours counts as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def read_state(s: Settings) -> StackState | None:
    try:
        return StackState(**json.loads(_state_file(s).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _check_port_free(host: str, port: int, kind: int, what: str) -> None:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as e:
            proto = "UDP" if kind == socket.SOCK_DGRAM else "TCP"
            raise StackError(
                f"{proto} port {host}:{port} ({what}) is already in use: {e.strerror}. "
                f"Stop whatever holds it or change the port in the config"
            ) from None


def _ari_ready(s: Settings) -> bool:
    url = f"http://{s.stack.bind}:{s.stack.ari_port}/ari/asterisk/info"
    token = b64encode(f"{s.ari.username}:{s.ari.password.get_secret_value()}".encode()).decode()
    req = urllib.request.Request(url, headers={"Authorization": f"Basic {token}"})
    try:
        with urllib.request.urlopen(req, timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def _redis_ready(port: int, host: str) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as c:
            c.sendall(b"PING\r\n")
            return c.recv(16).startswith(b"+PONG")
    except OSError:
        return False


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


def _kill(pid: int, timeout: float = 5.0) -> None:
    if not _alive(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        if not _alive(pid):
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)


def up(s: Settings) -> StackState:
    """Start Asterisk and Redis (idempotent: an already running stack is returned as is)."""
    state = read_state(s)
    if state and _alive(state.asterisk_pid) and _alive(state.redis_pid):
        return state
    if state:  # half-dead stack from an earlier run: clean it up first
        down(s)
    _require_root("the embedded Asterisk")
    if not shutil.which("redis-server"):
        raise StackError("redis-server is not installed (apt-get install redis-server)")
    b = s.stack.bind
    _check_port_free(b, s.stack.ari_port, socket.SOCK_STREAM, "Asterisk ARI/HTTP")
    _check_port_free(b, s.stack.sip_port, socket.SOCK_DGRAM, "Asterisk SIP")
    _check_port_free(b, s.stack.redis_port, socket.SOCK_STREAM, "Redis")

    root = unpack_rootfs(s)
    render_config(s, root / "etc/asterisk")
    for d in ("run/asterisk", "var/log/asterisk", "var/spool/asterisk", "var/lib/asterisk"):
        (root / d).mkdir(parents=True, exist_ok=True)
    run = s.stack.run_dir
    run.mkdir(parents=True, exist_ok=True)
    (run / "redis").mkdir(exist_ok=True)

    ast_log = run / "asterisk.log"
    ast = subprocess.Popen(
        ["chroot", str(root), "/usr/sbin/asterisk", "-f", "-n"],
        stdin=subprocess.DEVNULL, stdout=ast_log.open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    redis_log = run / "redis.log"
    red = subprocess.Popen(
        ["redis-server", "--bind", b, "--port", str(s.stack.redis_port), "--dir", str(run / "redis"),
         "--appendonly", "yes", "--save", "", "--daemonize", "no", "--protected-mode", "yes"],
        stdin=subprocess.DEVNULL, stdout=redis_log.open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    state = StackState(
        asterisk_pid=ast.pid,
        redis_pid=red.pid,
        ari_url=f"http://{b}:{s.stack.ari_port}/ari",
        sip=f"{b}:{s.stack.sip_port}",
        redis_url=f"redis://{b}:{s.stack.redis_port}/0",
        rootfs=str(root),
        started_at=time.time(),
    )
    _state_file(s).write_text(json.dumps(asdict(state)))
    try:
        _wait(lambda: _ari_ready(s), s.stack.start_timeout, "Asterisk", ast.pid, ast_log)
        _wait(lambda: _redis_ready(s.stack.redis_port, b), 10, "redis-server", red.pid, redis_log)
    except StackError:
        down(s)
        raise
    return state


def down(s: Settings) -> list[int]:
    """Stop exactly the processes ``up`` started (by pid). Returns the pids that were stopped."""
    state = read_state(s)
    stopped: list[int] = []
    if state:
        for pid in (state.asterisk_pid, state.redis_pid):
            if _alive(pid):
                _kill(pid)
                stopped.append(pid)
    _state_file(s).unlink(missing_ok=True)
    return stopped


def restart_redis(s: Settings) -> StackState:
    """Stop and start only redis-server (tests of Redis outages use it)."""
    state = read_state(s)
    if not state:
        raise StackError("the stack is not running")
    _kill(state.redis_pid)
    run = s.stack.run_dir
    red = subprocess.Popen(
        ["redis-server", "--bind", s.stack.bind, "--port", str(s.stack.redis_port),
         "--dir", str(run / "redis"), "--appendonly", "yes", "--save", "", "--daemonize", "no"],
        stdin=subprocess.DEVNULL, stdout=(run / "redis.log").open("ab"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    state.redis_pid = red.pid
    _state_file(s).write_text(json.dumps(asdict(state)))
    _wait(
        lambda: _redis_ready(s.stack.redis_port, s.stack.bind), 10, "redis-server", red.pid, run / "redis.log"
    )
    return state


def status(s: Settings) -> dict:
    state = read_state(s)
    if not state:
        return {"running": False}
    return {
        "running": _alive(state.asterisk_pid) and _alive(state.redis_pid),
        "asterisk": {"pid": state.asterisk_pid, "alive": _alive(state.asterisk_pid)},
        "redis": {"pid": state.redis_pid, "alive": _alive(state.redis_pid)},
        "ari_url": state.ari_url,
        "ari_app": s.ari.app,
        "sip": f"udp:{state.sip}",
        "call_extension": f"sip:{s.stack.extension}@{state.sip}",
        "agent_phone": f"sip:agent@{s.stack.bind}:{s.stack.agent_port} (queue support)",
        "redis_url": state.redis_url,
        "rootfs": state.rootfs,
    }


def asterisk_cli(s: Settings, command: str) -> str:
    """Run one Asterisk CLI command in the running embedded Asterisk (``asterisk -rx``)."""
    root = rootfs_dir(s)
    r = subprocess.run(["chroot", str(root), "/usr/sbin/asterisk", "-rx", command],
                       capture_output=True, text=True, timeout=10)  # fmt: skip
    return r.stdout
