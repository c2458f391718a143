"""The CLI with bad input: one message naming the file and the key, exit code 2, no traceback;
and ``serve`` finds a bad flow before it contacts Redis or ARI. Runs the real ``ari-app``
console script (a traceback is only honest to test in a real process); needs no stack."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

BAD = Path(__file__).resolve().parent.parent / "dialog" / "bad_flows"
ARI_APP = Path(sys.executable).parent / "ari-app"


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A TCP port that stands in for both Redis and ARI: any connection to it would be seen."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    s.setblocking(False)
    yield s
    s.close()


def run(tmp_path: Path, listener: socket.socket, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    port = listener.getsockname()[1]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ARI_APP_")}
    clean.update(
        XDG_STATE_HOME=str(tmp_path / "state"),
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        ARI_APP_REDIS__URL=f"redis://127.0.0.1:{port}/0",
        ARI_APP_ARI__URL=f"http://127.0.0.1:{port}/ari",
        COLUMNS="80",  # a narrow terminal must not wrap a message into pieces
        **env,
    )
    return subprocess.run(
        [str(ARI_APP), *args],
        env=clean,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def assert_one_clean_error(r: subprocess.CompletedProcess[str], *expected: str) -> None:
    out = r.stdout + r.stderr
    assert r.returncode == 2, out
    assert "Traceback" not in out and 'File "' not in out, out
    assert out.count("error:") == 1, out
    for text in expected:
        assert text in out, out


def assert_untouched(listener: socket.socket) -> None:
    with pytest.raises(BlockingIOError):  # nobody connected to "Redis" or "ARI"
        listener.accept()


def test_serve_reports_a_bad_flow_before_contacting_redis_or_ari(
    tmp_path: Path, listener: socket.socket
) -> None:
    flow = BAD / "undefined_names.yaml"
    t0 = time.monotonic()
    r = run(tmp_path, listener, "serve", str(flow))
    assert_one_clean_error(
        r, "invalid flows", str(flow), "flows.reschedule.steps[1].collect: undefined slot 'missing_slot'"
    )
    assert "redis" not in r.stderr.lower() and "ari.url" not in r.stderr
    assert time.monotonic() - t0 < 15  # no connection retries: only the CLI start-up
    assert_untouched(listener)


def test_serve_reports_flow_yaml_syntax_with_line(tmp_path: Path, listener: socket.socket) -> None:
    flow = BAD / "not_yaml.yaml"
    r = run(tmp_path, listener, "serve", str(flow))
    assert_one_clean_error(r, f"{flow}: not valid YAML (line 3, column 1)")
    assert_untouched(listener)


def test_serve_reports_a_missing_flow_path(tmp_path: Path, listener: socket.socket) -> None:
    r = run(tmp_path, listener, "serve", str(tmp_path / "nope.yaml"))
    assert_one_clean_error(r, f"{tmp_path / 'nope.yaml'}: file does not exist")
    assert_untouched(listener)


def test_inverted_port_range_from_the_config_file(tmp_path: Path, listener: socket.socket) -> None:
    cfg = tmp_path / "iva.yaml"
    cfg.write_text("media:\n  rtp_port_min: 21000\n  rtp_port_max: 20000\n")
    r = run(tmp_path, listener, "serve", "--config", str(cfg))
    assert_one_clean_error(
        r, "media.rtp_port_min = 21000 is above media.rtp_port_max = 20000", f"({cfg} or environment)"
    )
    assert_untouched(listener)


@pytest.mark.parametrize("command", [["models", "check"], ["asterisk", "render", "rendered"]])
def test_other_commands_report_a_bad_setting_the_same_way(
    tmp_path: Path, listener: socket.socket, command: list[str]
) -> None:
    r = run(
        tmp_path, listener, *command, ARI_APP_MEDIA__RTP_PORT_MIN="20001", ARI_APP_MEDIA__RTP_PORT_MAX="20001"
    )
    assert_one_clean_error(r, "media.rtp_port_min..media.rtp_port_max = 20001..20001 holds no even port")
    assert not (tmp_path / "rendered").exists()


def test_chat_reports_a_bad_flow(tmp_path: Path, listener: socket.socket) -> None:
    r = run(tmp_path, listener, "chat", str(BAD / "wrong_types.yaml"))
    assert_one_clean_error(r, f"{BAD / 'wrong_types.yaml'}: flows.broken")


def test_a_config_path_that_is_a_directory(tmp_path: Path, listener: socket.socket) -> None:
    r = run(tmp_path, listener, "serve", "--config", str(tmp_path))
    assert_one_clean_error(r, f"cannot read {tmp_path}")
    assert_untouched(listener)


def test_campaign_run_reports_a_bad_campaign_file_before_contacting_redis(
    tmp_path: Path, listener: socket.socket
) -> None:
    (tmp_path / "c.yaml").write_text(
        "name: bad\nflow: appointment_reminder\ncontacts: c.csv\ncaller_id: '5551000'\n"
        "timezone: UTC\npacing: {max_concurrent: 0}\n"
    )
    r = run(tmp_path, listener, "campaign", "run", "c.yaml")
    assert_one_clean_error(r, "c.yaml: pacing.max_concurrent")
    missing = run(tmp_path, listener, "campaign", "run", "nope.yaml")
    assert_one_clean_error(missing, "nope.yaml")
    (tmp_path / "f.yaml").write_text(
        "name: bad\nflow: no_such_flow\ncontacts: c.csv\ncaller_id: '5551000'\ntimezone: UTC\n"
    )
    unknown = run(tmp_path, listener, "campaign", "run", "f.yaml")
    assert_one_clean_error(unknown, "'no_such_flow' is not a loaded flow")
    assert_untouched(listener)
