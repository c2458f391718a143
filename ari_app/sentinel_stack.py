"""stack: Redis Sentinel in the embedded stack (`ari-app stack up --sentinel`).

Why: a site that must survive the loss of its Redis machine runs Sentinel (docs/redis_sentinel.md),
and an admin wants to see the agent on it before going live: here a primary, a replica and
three sentinels start on loopback (``stack.sentinel_port_base``: the data nodes on it and + 1,
the sentinels on + 2 .. + 4), with the embedded stack's Redis password on the data nodes and a
generated one on the sentinels, both kept 0600 in the run dir. The nodes are ``redis_lab``'s;
this module only keeps their pids across commands, so `stack down` and `stack status` find them.
The workers of `stack up --workers N --sentinel` use it (``redis_env``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import redis

from ari_app.config import Settings, embedded_secret
from ari_app.redis_lab import LabError, SentinelLab
from ari_app.stack import StackError, _alive, _stop, redis_password

SENTINEL_PASSWORD_FILE = "sentinel-password"
MASTER = "ari-app"


def lab(s: Settings) -> SentinelLab:
    base = s.stack.sentinel_port_base
    return SentinelLab(s.stack.run_dir / "sentinel", ports=[base + i for i in range(5)], master=MASTER,
                       bind=s.stack.bind, password=redis_password(s),
                       sentinel_password=embedded_secret(s.stack, SENTINEL_PASSWORD_FILE))  # fmt: skip


def _state_file(s: Settings) -> Path:
    return s.stack.run_dir / "sentinel.json"


def read_state(s: Settings) -> dict[str, Any] | None:
    try:
        return dict(json.loads(_state_file(s).read_text()))
    except (OSError, ValueError):
        return None


def up(s: Settings) -> dict[str, Any]:
    """Start the five nodes (harmless when they already run) and return the state."""
    state = read_state(s)
    if state and all(_alive(pid) for pid in state["pids"].values()):
        return state
    if state:
        down(s)
    the_lab = lab(s)
    try:
        the_lab.up()
    except LabError as e:
        raise StackError(f"Redis Sentinel did not start: {e} (stack.sentinel_port_base = "
                         f"{s.stack.sentinel_port_base})") from None  # fmt: skip
    state = {
        "pids": {n.name: n.proc.pid for n in the_lab.nodes.values() if n.proc is not None},
        "sentinels": the_lab.sentinel_addresses,
        "master": MASTER,
    }
    fd = os.open(_state_file(s), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(state, f)
    return state


def down(s: Settings) -> list[int]:
    state = read_state(s)
    if not state:
        return []
    pids = [pid for pid in state["pids"].values() if _alive(pid)]
    _stop(pids)
    _state_file(s).unlink(missing_ok=True)
    return pids


def redis_env(s: Settings) -> dict[str, str]:
    """The environment that points an `ari-app serve` at the sentinels (passwords included:
    for child processes only, never printed)."""
    state = read_state(s)
    if not state:
        raise StackError("Redis Sentinel is not running (ari-app stack up --sentinel)")
    return {
        "ARI_APP_REDIS__URL": f"redis://:{redis_password(s)}@{MASTER}/0",
        "ARI_APP_REDIS__SENTINELS": ",".join(state["sentinels"]),
        "ARI_APP_REDIS__SENTINEL_MASTER": state["master"],
        "ARI_APP_REDIS__SENTINEL_PASSWORD": embedded_secret(s.stack, SENTINEL_PASSWORD_FILE),
    }


def status(s: Settings) -> dict[str, Any] | None:
    state = read_state(s)
    if not state:
        return None
    primary = None
    for addr in state["sentinels"]:  # the first sentinel that answers names the primary
        host, port = addr.rsplit(":", 1)
        try:
            with redis.Redis(host, int(port), password=embedded_secret(s.stack, SENTINEL_PASSWORD_FILE),
                             socket_timeout=1) as c:  # fmt: skip
                got = c.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", state["master"])
        except redis.RedisError:
            continue
        if got:
            primary = f"{got[0].decode() if isinstance(got[0], bytes) else got[0]}:{int(got[1])}"
            break
    return {
        "master": state["master"],
        "primary": primary,
        "sentinels": state["sentinels"],
        "nodes": {name: {"pid": pid, "alive": _alive(pid)} for name, pid in state["pids"].items()},
    }
