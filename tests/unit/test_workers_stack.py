"""The embedded stack's worker layout: the HAProxy config we write is valid for the installed
HAProxy and balances websockets the way docs/scaling.md says; the Asterisk config routes the
workers extension to the outbound app with a fallback to a person."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from ari_app import stack, workers_stack
from ari_app.config import ConfigError, load_settings


def test_haproxy_config_balances_websockets_on_readiness(tmp_path: Path) -> None:
    s = load_settings()
    cfg = workers_stack.haproxy_config(s, [8770, 8771, 8772])
    for needed in ("mode http", "balance leastconn", "option httpchk GET /readyz", "timeout tunnel",
                   f"bind {s.stack.bind}:{s.stack.workers_port}", "retry-on conn-failure empty-response 503"):  # fmt: skip
        assert needed in cfg, needed
    assert cfg.count(" check inter ") == 3
    if shutil.which("haproxy") is None:
        pytest.skip("haproxy not installed")
    path = tmp_path / "haproxy.cfg"
    path.write_text(cfg)
    r = subprocess.run(["haproxy", "-c", "-f", str(path)], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stdout + r.stderr


def test_outbound_websocket_config_renders(tmp_path: Path) -> None:
    s = load_settings(
        ari={"worker_username": "w-user", "worker_password": "w-pass", "outbound_app": "iva-ws"}
    )
    out = {p.name: p.read_text() for p in stack.render_config(s, tmp_path)}
    ws = out["websocket_client.conf"]
    assert f"uri = ws://{s.stack.bind}:{s.stack.workers_port}/ari/ws" in ws
    assert "username = w-user" in ws and "password = w-pass" in ws and "per_call_config" in ws
    ari = out["ari.conf"]
    assert "[iva-ws]\ntype = outbound_websocket" in ari and "apps = iva-ws" in ari
    assert f"local_ari_user = {s.ari.username}" in ari
    dialplan = out["ari_app.conf"]
    assert f"exten => {s.stack.workers_extension},1," in dialplan
    assert "Stasis(iva-ws,inbound,${EXTEN})" in dialplan
    assert '$["${STASISSTATUS}" = "FAILED"]?ari-app-failure,s,1' in dialplan


def test_shipped_worker_password_refused_off_loopback() -> None:
    with pytest.raises(ConfigError, match=r"ari\.worker_password"):
        load_settings(ari={"mode": "outbound"}, web={"host": "0.0.0.0", "metrics_token": "x"})
    load_settings(
        ari={"mode": "outbound", "worker_password": "real"}, web={"host": "0.0.0.0", "metrics_token": "x"}
    )


def test_compose_workers_match_the_shipped_haproxy_config() -> None:
    import yaml

    root = Path(__file__).resolve().parents[2]
    services = yaml.safe_load((root / "docker-compose.yml").read_text())["services"]
    ports = [int(services[w]["environment"]["ARI_APP_WEB__PORT"]) for w in ("worker-1", "worker-2")]
    assert all(
        services[w]["environment"]["ARI_APP_ARI__MODE"] == "outbound" for w in ("worker-1", "worker-2")
    )
    assert "haproxy" in services
    shipped = (root / "docker" / "haproxy.cfg").read_text()
    assert shipped == workers_stack.haproxy_config(load_settings(), ports), "regenerate docker/haproxy.cfg"
