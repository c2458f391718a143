"""session: a Redis Sentinel lab on loopback: one primary, one replica and three sentinels.

Why: a failover is the Redis fault the embedded stack cannot show (it runs one redis-server).
Tests and benchmarks/sentinel_failover.py start this beside it, on ports of their own (a port in
use, such as the embedded Redis's, is refused), kill or fail over the primary and watch the app
follow. Every node requires a password, as ours always does: generated per lab and kept in 0600
config files (not on the command line, where ``ps`` shows it). Sentinel mode is
``redis-server <conf> --sentinel``: Debian's redis-server package ships no redis-sentinel.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from ari_app.config import RedisSettings

BIND = "127.0.0.1"


class LabError(Exception):
    """The lab cannot start or does not reach the state asked for (the message says which)."""


def free_ports(n: int, bind: str = BIND) -> list[int]:
    """``n`` distinct TCP ports nothing listens on now (the kernel's picks, never a fixed one)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind((bind, 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass
class Node:
    name: str
    port: int
    sentinel: bool
    conf: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class SentinelLab:
    """``redis-1`` starts as primary, ``redis-2`` as its replica; ``sentinel-1..3`` watch them.
    Names stay with processes (after a failover ``redis-2`` is the primary)."""

    run_dir: Path
    ports: list[int] = field(default_factory=lambda: free_ports(5))  # 2 data nodes + 3 sentinels
    master: str = "ari-app"
    bind: str = BIND
    down_after_ms: int = 1000  # a primary silent this long is down (production: 5000-30000)
    failover_timeout_ms: int = 3000
    password: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    sentinel_password: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    nodes: dict[str, Node] = field(init=False)
    # Sentinel run ids, written into every sentinel's config with the others' addresses: they
    # know each other at once instead of after a few 2-second hello rounds.
    _ids: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        if len(self.ports) != 5 or len(set(self.ports)) != 5:
            raise LabError(f"the lab needs 5 distinct ports (2 Redis + 3 sentinels), got {self.ports}")
        names = ["redis-1", "redis-2", "sentinel-1", "sentinel-2", "sentinel-3"]
        self.nodes = {
            n: Node(n, p, n.startswith("sentinel"), self.run_dir / f"{n}.conf", self.run_dir / f"{n}.log")
            for n, p in zip(names, self.ports, strict=True)
        }
        self._ids = {n: secrets.token_hex(20) for n in names if n.startswith("sentinel")}

    # ------------------------------------------------------------------ what the app is given

    def redis_settings(self) -> RedisSettings:
        # host:port of the URL is not used with sentinels: it only carries the data password.
        return RedisSettings(url=f"redis://:{self.password}@primary/0", sentinels=self.sentinel_addresses,
                             sentinel_master=self.master, sentinel_password=self.sentinel_password)  # fmt: skip

    @property
    def sentinel_addresses(self) -> list[str]:
        return [f"{self.bind}:{n.port}" for n in self.nodes.values() if n.sentinel]

    def data_url(self, name: str) -> str:
        """A direct URL to one data node (for the tests' own checks, not for the app)."""
        return f"redis://:{self.password}@{self.bind}:{self.nodes[name].port}/0"

    # ------------------------------------------------------------------ lifecycle

    def up(self, timeout: float = 20.0) -> None:
        """Start all five and return once every sentinel names redis-1 and knows the others."""
        if not shutil.which("redis-server"):
            raise LabError("redis-server is not installed (apt-get install redis-server)")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for n in self.nodes.values():
            with socket.socket() as s:
                if s.connect_ex((self.bind, n.port)) == 0:
                    raise LabError(f"port {self.bind}:{n.port} ({n.name}) is in use: pick other ports")
        try:
            self.start("redis-1")
            self.start("redis-2")
            self._until(lambda: self._info("redis-2").get("master_link_status") == "up", timeout,
                        "redis-2 to sync from redis-1")  # fmt: skip
            for name in ("sentinel-1", "sentinel-2", "sentinel-3"):
                self.start(name)
            self.wait_agreed(self.nodes["redis-1"].port, timeout)
        except BaseException:
            self.down()
            raise

    def down(self) -> None:
        for n in self.nodes.values():
            self.stop(n.name, signal.SIGTERM)

    def __enter__(self) -> SentinelLab:
        self.up()
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    def start(self, name: str, timeout: float = 10.0) -> None:
        """(Re)start one node from its config (a data node keeps its append-only file)."""
        n = self.nodes[name]
        if n.alive:
            return
        if not n.conf.exists():  # once written it is the node's state (Redis rewrites it on a failover)
            self._write_conf(n)
        cmd = ["redis-server", str(n.conf)] + (["--sentinel"] if n.sentinel else [])
        # umask 077: Redis rewrites its config (sentinels do all the time); the password stays 0600.
        n.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=n.log.open("ab"),
                                  stderr=subprocess.STDOUT, start_new_session=True, umask=0o077)  # fmt: skip
        self._until(lambda: self._ping(n), timeout, f"{name} to answer on {self.bind}:{n.port}", n)

    def stop(self, name: str, sig: signal.Signals = signal.SIGKILL, timeout: float = 5.0) -> None:
        """SIGKILL by default: the node dies as on a power cut (nothing flushed, no goodbye)."""
        n = self.nodes[name]
        if n.proc is None:
            return
        if n.proc.poll() is None:
            n.proc.send_signal(sig)
            try:
                n.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                n.proc.kill()
                n.proc.wait(timeout)
        n.proc = None

    # ------------------------------------------------------------------ what the sentinels say

    def primary(self) -> tuple[str, int] | None:
        """The primary most live sentinels name (None while they name none, or disagree)."""
        votes: dict[tuple[str, int], int] = {}
        for n in self._live_sentinels():
            try:
                with self._client(n) as c:
                    got = c.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.master)
            except redis.RedisError:
                continue
            if got:
                votes[(got[0], int(got[1]))] = votes.get((got[0], int(got[1])), 0) + 1
        best = max(votes.items(), key=lambda kv: kv[1], default=None)
        return best[0] if best and best[1] >= 2 else None

    def primary_name(self) -> str | None:
        addr = self.primary()
        return next((n.name for n in self.nodes.values() if addr and n.port == addr[1]), None)

    def wait_agreed(self, port: int, timeout: float = 20.0, replicas: int = 1) -> None:
        """Until every live sentinel names ``port`` as primary, sees it up and role master, knows the
        other live sentinels and ``replicas`` replicas: a failover can then be decided."""

        def agreed() -> bool:
            live = self._live_sentinels()
            for n in live:
                try:
                    # Raw: redis-py 6.4's parser of SENTINEL MASTER breaks on a plain client.
                    with self._client(n) as c:
                        flat = c.execute_command("SENTINEL", "MASTER", self.master)
                except redis.RedisError:
                    return False
                m = dict(zip(flat[::2], flat[1::2], strict=True))
                if (int(m["port"]) != port or m["flags"] != "master" or int(m["num-other-sentinels"]) < len(live) - 1
                        or int(m["num-slaves"]) < replicas):  # fmt: skip
                    return False
            target = next(x for x in self.nodes.values() if x.port == port)
            return self._info(target.name).get("role") == "master"

        self._until(agreed, timeout, f"the sentinels to agree on {self.bind}:{port} as primary")

    def wait_failover(self, old_port: int, timeout: float = 20.0) -> tuple[str, int]:
        """Until the sentinels name a primary other than ``old_port`` and it takes writes."""
        got: list[tuple[str, int]] = []

        def moved() -> bool:
            addr = self.primary()
            if addr is None or addr[1] == old_port:
                return False
            name = next(n.name for n in self.nodes.values() if n.port == addr[1])
            if self._info(name).get("role") != "master":
                return False
            got.append(addr)
            return True

        self._until(moved, timeout, f"a failover away from {self.bind}:{old_port}")
        return got[-1]

    def failover(self) -> None:
        """``SENTINEL FAILOVER``: a graceful switch (what an admin does before maintenance)."""
        with self._client(self._live_sentinels()[0]) as c:
            c.execute_command("SENTINEL", "FAILOVER", self.master)

    def status(self) -> dict[str, Any]:
        return {
            "master": self.master,
            "primary": self.primary_name(),
            "nodes": {n.name: {"port": n.port, "alive": n.alive, "pid": n.proc.pid if n.proc else None,
                               "role": "sentinel" if n.sentinel else self._info(n.name).get("role")}
                      for n in self.nodes.values()},
        }  # fmt: skip

    # ------------------------------------------------------------------ internals

    def _write_conf(self, n: Node) -> None:
        lines = [f"bind {self.bind}", f"port {n.port}", "protected-mode yes", "daemonize no",
                 f"dir {self.run_dir}"]  # fmt: skip
        if n.sentinel:
            m = self.master
            lines += [
                f"requirepass {self.sentinel_password}",  # also what sentinels use with each other
                f"sentinel monitor {m} {self.bind} {self.nodes['redis-1'].port} 2",
                f"sentinel auth-pass {m} {self.password}",
                f"sentinel down-after-milliseconds {m} {self.down_after_ms}",
                f"sentinel failover-timeout {m} {self.failover_timeout_ms}",
                f"sentinel parallel-syncs {m} 1",
                f"sentinel myid {self._ids[n.name]}",
                f"sentinel known-replica {m} {self.bind} {self.nodes['redis-2'].port}",
            ]
            lines += [f"sentinel known-sentinel {m} {self.bind} {self.nodes[other].port} {run_id}"
                      for other, run_id in self._ids.items() if other != n.name]  # fmt: skip
        else:
            # masterauth on both: after a failover the old primary comes back as a replica.
            # appendfsync always: a node killed and restarted keeps every acknowledged write.
            # repl-diskless-sync-delay 0: Redis would wait 5 s for more replicas before a sync.
            lines += [
                f"requirepass {self.password}",
                f"masterauth {self.password}",
                "appendonly yes",
                f"appendfilename {n.name}.aof",
                f"appenddirname {n.name}-aof",
                "appendfsync always",
                'save ""',
                f"dbfilename {n.name}.rdb",
                "repl-diskless-sync-delay 0",
            ]
            if n.name == "redis-2":
                lines.append(f"replicaof {self.bind} {self.nodes['redis-1'].port}")
        fd = os.open(n.conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(lines) + "\n")

    def _client(self, n: Node) -> redis.Redis:
        pw = self.sentinel_password if n.sentinel else self.password
        return redis.Redis(host=self.bind, port=n.port, password=pw, socket_timeout=1.0,
                           socket_connect_timeout=1.0, decode_responses=True)  # fmt: skip

    def _ping(self, n: Node) -> bool:
        try:
            with self._client(n) as c:
                return bool(c.ping())
        except redis.RedisError:
            return False

    def _info(self, name: str) -> dict[str, Any]:
        n = self.nodes[name]
        try:
            with self._client(n) as c:
                return dict(c.info("replication"))
        except redis.RedisError:
            return {}

    def _live_sentinels(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.sentinel and n.alive]

    def _until(self, pred: Any, timeout: float, what: str, node: Node | None = None) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred():
                return
            if node is not None and not node.alive:
                tail = node.log.read_text(errors="replace")[-1500:] if node.log.exists() else ""
                raise LabError(f"{node.name} exited; last log lines:\n{tail}")
            time.sleep(0.05)
        raise LabError(f"timed out after {timeout:.0f} s waiting for {what} (logs in {self.run_dir})")
