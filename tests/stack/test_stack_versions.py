"""Which Asterisk the stack runs, and that ``down`` really stops it. Debian sid cannot be pinned, so
the rootfs's ``asterisk*`` versions are read from its dpkg status (the shape dpkg writes), kept as
a manifest next to the tarball and compared with ``asterisk/versions-green.txt``; and ``down``
returns only once every process it stopped is gone (zombies count as gone, a zombie leader whose
threads still run does not) and its ports are free, so an ``up`` right after works."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ari_app import rootfs, stack
from ari_app.config import Settings, load_settings

# The shape dpkg writes: stanzas separated by blank lines, multi-line fields continued with a
# leading space, and a removed package whose config files remain still listed.
DPKG_STATUS = """\
Package: asterisk
Status: install ok installed
Priority: optional
Section: comm
Installed-Size: 8936
Maintainer: Debian VoIP Team <pkg-voip-maintainers@lists.alioth.debian.org>
Architecture: amd64
Version: 1:22.10.1+dfsg+~cs6.17.60671434-1
Provides: asterisk-abi-1fb7f5c06d7a2052e38d021b3d8ca151
Depends: adduser, asterisk-config (= 1:22.10.1+dfsg+~cs6.17.60671434-1) | asterisk-config-custom
Recommends: asterisk-moh-opsound-gsm, sox
Conffiles:
 /etc/default/asterisk 2a8d0e4a6b5a6ed4ab6bc47fc3c8e1d4
 /etc/init.d/asterisk 0c7ef5e0e4bd1e8a1dc8d7dcb3bd1a3e
Description: Open Source Private Branch Exchange (PBX)
 Asterisk is an Open Source PBX and telephony toolkit.  It is, in a
 sense, middleware between Internet and telephony channels on the bottom,
 .
 Version: 9.9 in a description line is not a field
Homepage: https://www.asterisk.org/

Package: libc6
Status: install ok installed
Priority: optional
Section: libs
Architecture: amd64
Multi-Arch: same
Version: 2.41-12
Description: GNU C Library: Shared libraries

Package: asterisk-dahdi
Status: deinstall ok config-files
Priority: optional
Section: comm
Architecture: amd64
Version: 1:22.9.0~dfsg-1
Conffiles:
 /etc/asterisk/chan_dahdi.conf 4f9b1d3a0e5c6b7a8d9e0f1a2b3c4d5e
Description: DAHDI devices support for the Asterisk PBX

Package: asterisk-moh-opsound-gsm
Status: install ok installed
Priority: optional
Section: comm
Installed-Size: 2156
Maintainer: Debian VoIP Team <pkg-voip-maintainers@lists.alioth.debian.org>
Architecture: all
Version: 2.03-2
Description: asterisk extra sound files - English/gsm

Package: asterisk-modules
Status: install ok installed
Architecture: amd64
Source: asterisk
Version: 1:22.10.1+dfsg+~cs6.17.60671434-1
Description: loadable modules for the Asterisk PBX
"""

GOT = {
    "asterisk": "1:22.10.1+dfsg+~cs6.17.60671434-1",
    "asterisk-modules": "1:22.10.1+dfsg+~cs6.17.60671434-1",
    "asterisk-moh-opsound-gsm": "2.03-2",
}


def _tmp_settings(tmp_path: Path) -> Settings:
    return load_settings(stack={"cache_dir": str(tmp_path / "cache"), "run_dir": str(tmp_path / "run")})


def test_dpkg_status_gives_the_installed_asterisk_packages() -> None:
    assert rootfs.parse_dpkg_status(DPKG_STATUS) == GOT  # no libc6, no removed asterisk-dahdi


def test_manifest_is_sorted_name_version_lines_and_round_trips() -> None:
    text = rootfs.format_manifest(GOT)
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert lines == [f"{name} {version}" for name, version in sorted(GOT.items())]
    assert rootfs.parse_manifest(text) == GOT


def test_difference_from_green_names_package_versions_and_the_fix() -> None:
    green = {**GOT, "asterisk": "1:22.9.0~dfsg-1", "asterisk-config": "1:22.9.0~dfsg-1"}
    got = {**GOT, "asterisk-voicemail": "1:22.10.1+dfsg+~cs6.17.60671434-1"}
    diffs = rootfs.compare_versions(green, got)
    assert diffs == [
        rootfs.VersionDiff("asterisk", "1:22.9.0~dfsg-1", GOT["asterisk"]),
        rootfs.VersionDiff("asterisk-config", "1:22.9.0~dfsg-1", None),
        rootfs.VersionDiff("asterisk-voicemail", None, "1:22.10.1+dfsg+~cs6.17.60671434-1"),
    ]
    manifest = Path("/cache/rootfs.tar.zst.versions")
    warning = rootfs.versions_warning(diffs, manifest, Path("/repo/asterisk/versions-green.txt"))
    assert f"asterisk: green 1:22.9.0~dfsg-1, got {GOT['asterisk']}" in warning
    assert "asterisk-config: green 1:22.9.0~dfsg-1, got (absent)" in warning
    assert "asterisk-voicemail: green (absent), got 1:22.10.1" in warning
    assert "cannot be pinned" in warning
    assert "cp /cache/rootfs.tar.zst.versions /repo/asterisk/versions-green.txt" in warning
    assert rootfs.compare_versions(GOT, dict(GOT)) == []
    assert rootfs.versions_warning([], manifest) == ""


def test_committed_green_list_is_a_manifest() -> None:
    green = rootfs.green_versions()
    assert green and green["asterisk"].startswith("1:22."), green
    assert rootfs.parse_manifest(rootfs.format_manifest(green)) == green


def test_not_built_yet(tmp_path: Path) -> None:
    report = rootfs.versions_report(_tmp_settings(tmp_path))
    assert report == {"built": False, "message": "Asterisk rootfs not built yet (ari-app stack build)"}
    assert stack.status(_tmp_settings(tmp_path))["versions"]["built"] is False


def test_manifest_is_written_lazily_from_an_unpacked_rootfs(tmp_path: Path) -> None:
    s = _tmp_settings(tmp_path)
    root = rootfs.rootfs_dir(s)
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / "var/lib/dpkg/status").write_text(DPKG_STATUS)
    (root / ".ari-app-unpacked").write_text(rootfs.tarball_path(s).name)
    green = tmp_path / "versions-green.txt"
    green.write_text(rootfs.format_manifest(GOT))
    report = rootfs.versions_report(s, green)
    assert report["packages"] == GOT and report["matches_green"] and report["warning"] is None
    assert rootfs.parse_manifest(rootfs.manifest_path(s).read_text()) == GOT

    green.write_text(rootfs.format_manifest({**GOT, "asterisk": "1:22.9.0~dfsg-1"}))
    report = rootfs.versions_report(s, green)
    assert not report["matches_green"]
    assert report["differences"] == [
        {"package": "asterisk", "green": "1:22.9.0~dfsg-1", "got": GOT["asterisk"]}
    ]
    assert f"cp {rootfs.manifest_path(s)} {green}" in report["warning"]


def test_manifest_is_written_lazily_from_a_cached_tarball(tmp_path: Path) -> None:
    s = _tmp_settings(tmp_path)
    src = tmp_path / "src"
    (src / "var/lib/dpkg").mkdir(parents=True)
    (src / "var/lib/dpkg/status").write_text(DPKG_STATUS)
    (src / "var/lib/dpkg/status-old").write_text(
        "Package: asterisk\nStatus: install ok installed\nVersion: 1\n"
    )
    tar = rootfs.tarball_path(s)
    tar.parent.mkdir(parents=True)
    subprocess.run(
        ["tar", "--zstd", "-cf", str(tar), "-C", str(src), "."], check=True
    )  # ./var/... like mmdebstrap
    assert not rootfs.manifest_path(s).exists()
    assert rootfs.rootfs_versions(s) == GOT
    assert rootfs.parse_manifest(rootfs.manifest_path(s).read_text()) == GOT


def test_pytest_header_names_the_versions_or_says_not_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import pytest_report_header

    monkeypatch.setenv("ARI_APP_STACK__CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("ARI_APP_STACK__RUN_DIR", str(tmp_path / "run"))
    assert pytest_report_header(None) == [  # type: ignore[arg-type]
        "asterisk rootfs: Asterisk rootfs not built yet (ari-app stack build)"
    ]
    s = load_settings()
    s.stack.cache_dir.mkdir(parents=True)
    rootfs.manifest_path(s).write_text(rootfs.format_manifest({**GOT, "asterisk": "1:99.0-1"}))
    rootfs.tarball_path(s).write_bytes(b"")
    header = pytest_report_header(None)  # type: ignore[arg-type]
    assert header[0].startswith("asterisk rootfs: asterisk 1:99.0-1, ")
    assert header[1].startswith("WARNING: the Asterisk rootfs differs")
    assert any("asterisk: green 1:22." in line and "got 1:99.0-1" in line for line in header)


# --------------------------------------------------------------------------- processes

LEADER_EXITS_FIRST = """
import ctypes, threading, time
threading.Thread(target=time.sleep, args=(1.0,)).start()
ctypes.CDLL(None).pthread_exit(None)  # the main thread (the pid) exits; the other one runs on
"""


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]


def test_zombie_leader_with_running_threads_is_alive_until_they_end() -> None:
    proc = subprocess.Popen([sys.executable, "-c", LEADER_EXITS_FIRST])
    try:
        deadline = time.monotonic() + 5
        while _state(proc.pid) != "Z" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _state(proc.pid) == "Z"
        assert stack._alive(proc.pid), "a thread still runs, so the process is not gone"
        assert proc.wait(5) == 0
    finally:
        proc.kill()
    assert not stack._alive(proc.pid)


def test_stop_reaps_a_zombie_child_and_escalates_to_sigkill() -> None:
    ignores_term = subprocess.Popen(
        [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
         "print('ready', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    exited = subprocess.Popen(["true"])
    assert ignores_term.stdout and ignores_term.stdout.readline() == b"ready\n"
    while _state(exited.pid) != "Z":
        time.sleep(0.01)
    assert not stack._alive(exited.pid)  # a zombie child counts as gone
    t0 = time.monotonic()
    stack._stop([ignores_term.pid, exited.pid], timeout=0.3)
    assert 0.3 <= time.monotonic() - t0 < 3
    for pid in (ignores_term.pid, exited.pid):
        assert not Path(f"/proc/{pid}").exists(), "reaped, not left a zombie"
    assert ignores_term.wait(1) in (-signal.SIGKILL, 0)  # 0: _stop reaped it before Popen could


def _private_settings(tmp_path: Path) -> Settings:
    """A stack of its own (ports, run dir), so the session's shared one keeps running."""
    base = load_settings()
    return load_settings(
        stack={
            **base.stack.model_dump(mode="json"),
            "run_dir": str(tmp_path / "run"),
            "ari_port": 8190,
            "sip_port": 5162,
            "redis_port": 6492,
            "asterisk_rtp_min": 11100,
            "asterisk_rtp_max": 11199,
        }
    )


def _survivors(root: Path) -> list[str]:
    """Processes (even zombies) whose root or command line is inside the private run dir."""
    found = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if str(root) in os.readlink(p / "root") or str(root) in (p / "cmdline").read_text():
                    found.append(f"{p.name} {_state(int(p.name))}")
            except OSError:
                continue
    return found


def _assert_gone(s: Settings, state: stack.StackState) -> None:
    for pid in (state.asterisk_pid, state.redis_pid):
        assert not Path(f"/proc/{pid}").exists(), f"pid {pid} is still there: {_state(pid)}"
        assert not stack._alive(pid)
    assert not _survivors(s.stack.run_dir)
    for port, kind, what in stack._stack_ports(s):
        assert stack._port_error(s.stack.bind, port, kind) is None, f"{what} port {port} still taken"


@pytest.mark.stack
def test_down_returns_when_everything_is_gone_and_up_right_after_works(real_stack, tmp_path: Path) -> None:
    s = _private_settings(tmp_path)
    first = stack.up(s)
    try:
        stopped = stack.down(s)
        assert set(stopped) == {first.asterisk_pid, first.redis_pid}
        _assert_gone(s, first)  # right after down returned: no process, no zombie, no port held

        second = stack.up(s)  # immediately: nothing of the first run stands in the way
        assert {second.asterisk_pid, second.redis_pid}.isdisjoint(stopped)
        assert stack.status(s)["running"] and stack._ari_ready(s)
        assert stack._redis_ready(s, s.stack.bind)
    finally:
        last = stack.read_state(s)
        stack.down(s)
    assert last is not None
    _assert_gone(s, last)
