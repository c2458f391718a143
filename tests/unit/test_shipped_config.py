"""The config we ship: settings errors name the key and value, the Asterisk config renders with
no placeholder left, and docker-compose.yml is valid and agrees with our defaults."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from ari_app import stack
from ari_app.config import ConfigError, load_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _defaults_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about the shipped defaults: ignore a developer's ARI_APP_* environment."""
    import os

    for key in list(os.environ):
        if key.startswith("ARI_APP_"):
            monkeypatch.delenv(key)


def test_bad_values_name_the_key_and_value(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("ari:\n  url: ftp://pbx\nmedia:\n  rtp_port_min: 80\n  colour: blue\n")
    with pytest.raises(ConfigError) as e:
        load_settings(cfg)
    msg = str(e.value)
    assert "ari.url = 'ftp://pbx'" in msg and "http://" in msg
    assert "media.rtp_port_min = 80" in msg
    assert "media.colour: unknown setting" in msg


def test_secrets_are_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARI_APP_ARI__PASSWORD", "s3cret")
    monkeypatch.setenv("ARI_APP_ARI__APP", "bad app name!")
    with pytest.raises(ConfigError) as e:
        load_settings()
    assert "ari.app = 'bad app name!'" in str(e.value)
    assert "s3cret" not in str(e.value)


def test_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("ari: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(bad)


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("ari:\n  app: from-file\n")
    monkeypatch.setenv("ARI_APP_ARI__APP", "from-env")
    assert load_settings(cfg).ari.app == "from-env"


def test_the_unauthenticated_lab_caller_endpoint_exists_only_on_loopback(tmp_path: Path) -> None:
    lab = {p.name: p.read_text() for p in stack.render_config(load_settings(), tmp_path / "lab")}
    assert "[caller](endpoint-tpl)" in lab["pjsip.conf"] and "LAB-ONLY" not in lab["pjsip.conf"]
    exposed = load_settings(stack={"bind": "192.0.2.10", "softphone_password": "a-real-secret"})
    out = {p.name: p.read_text() for p in stack.render_config(exposed, tmp_path / "lan")}["pjsip.conf"]
    assert "[caller]" not in out and "trust_id_inbound" not in out
    assert "[softphone-auth]" in out and "password = a-real-secret" in out  # authenticated ones stay


def test_asterisk_config_renders_completely(tmp_path: Path) -> None:
    s = load_settings(ari={"username": "pbx-agent", "password": "pw-123", "app": "iva"})
    written = {p.name: p.read_text() for p in stack.render_config(s, tmp_path)}
    for name, text in written.items():
        assert "@@" not in text.replace("@@@", ""), f"placeholder left in {name}"
        assert not re.search(r"@@[A-Z_]+@@", text), f"placeholder left in {name}"
    assert "bindaddr = 127.0.0.1" in written["http.conf"]
    assert "[pbx-agent]" in written["ari.conf"] and "password = pw-123" in written["ari.conf"]
    assert "Stasis(iva,inbound,${EXTEN})" in written["ari_app.conf"]
    assert "bind = 127.0.0.1:5060" in written["pjsip.conf"]
    modules = written["modules.conf"]
    for needed in ("res_ari.so", "chan_rtp.so", "res_rtp_multicast.so", "app_queue.so", "app_stack.so",
                   "app_exec.so", "res_pjsip_header_funcs.so", "res_websocket_client.so"):  # fmt: skip
        assert f"load => {needed}" in modules, needed


def test_docker_compose_matches_what_we_ship() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"asterisk", "redis", "agent", "asterisk-config"} <= set(services)
    for svc in services.values():
        build = svc.get("build")
        if build:
            assert (ROOT / build["context"] / build["dockerfile"]).is_file()
    redis_port = load_settings().redis.url.rsplit(":", 1)[1].split("/")[0]
    redis_cmd = " ".join(services["redis"]["command"])
    assert f"--port {redis_port}" in redis_cmd and "--bind 127.0.0.1" in redis_cmd
    assert "--requirepass" in redis_cmd, "Redis must not run without a password"
    assert ":${REDIS_PASSWORD" in compose["x-app-env"]["ARI_APP_REDIS__URL"]
    assert services["agent"]["command"] == ["ari-app", "serve"]
    assert services["asterisk-config"]["command"][:3] == ["ari-app", "asterisk", "render"]
    example = load_settings(ROOT / "config.example.yaml")
    assert example.redis.url.endswith(f":{redis_port}/0")
