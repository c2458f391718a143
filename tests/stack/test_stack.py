"""The foundation against the real thing: Asterisk answers ARI, a real SIP INVITE from sipp
reaches our Stasis app with the caller's number, Redis round-trips, and the stack's lifecycle
(up twice, port in use, down) leaves nothing behind."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
from pathlib import Path

import pytest

from ari_app import rootfs, stack
from ari_app.ari import AriClient, EventStream
from ari_app.ari.models import Event
from ari_app.config import Settings, load_settings

HERE = Path(__file__).parent
pytestmark = pytest.mark.stack


async def test_asterisk_answers_ari(asterisk, settings: Settings) -> None:
    async with AriClient(settings.ari) as ari:
        info = await ari.info()
    assert info["system"]["version"].startswith("22."), info["system"]
    assert info["config"]["name"] or info["status"]["startup_time"]


def _sipp(settings: Settings, tmp_path: Path, number: str, hold_ms: int = 300) -> subprocess.Popen[bytes]:
    scenario = (HERE / "sipp_invite_bye.xml").read_text()
    scenario = scenario.replace("CALLER_NUMBER", number).replace("HOLD_MS", str(hold_ms))
    path = tmp_path / "scenario.xml"
    path.write_text(scenario)
    return subprocess.Popen(
        ["sipp", f"{settings.stack.bind}:{settings.stack.sip_port}", "-sf", str(path),
         "-s", settings.stack.extension, "-i", "127.0.0.1", "-p", "5071", "-m", "1",
         "-nostdin", "-timeout", "20s", "-timeout_error", "-trace_err",
         "-error_file", str(tmp_path / "sipp.err")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp_path,
    )  # fmt: skip


async def test_sipp_invite_reaches_our_stasis_app(asterisk, settings: Settings, tmp_path: Path) -> None:
    starts: asyncio.Queue[Event] = asyncio.Queue()

    async def on_event(ev: Event) -> None:
        if ev.type == "StasisStart":
            await starts.put(ev)

    events = EventStream(settings.ari, on_unrouted=on_event)
    events.start()
    await asyncio.wait_for(events.connected.wait(), 5)
    sipp = _sipp(settings, tmp_path, "+15551234567")
    try:
        ev = await asyncio.wait_for(starts.get(), 10)
        assert ev.application == settings.ari.app
        assert ev.channel is not None
        assert ev.channel.caller.number == "+15551234567"
        assert ev.args[:2] == ["inbound", settings.stack.extension]
        async with AriClient(settings.ari) as ari:
            await ari.answer(ev.channel.id)  # sipp waits for our 200 OK, then hangs up itself
        rc = await asyncio.to_thread(sipp.wait, 20)
        assert rc == 0, sipp.stderr.read().decode() if sipp.stderr else rc
    finally:
        if sipp.poll() is None:
            sipp.kill()
        await events.close()


async def test_redis_round_trip(redis) -> None:
    key = f"test:roundtrip:{os.getpid()}"
    await redis.set(key, b"hello", px=5000)
    assert await redis.get(key) == b"hello"
    await redis.delete(key)
    assert await redis.get(key) is None


def _private_settings(tmp_path: Path) -> Settings:
    """A second stack on other ports and its own run dir, so the shared one is untouched."""
    base = load_settings()
    return load_settings(
        stack={
            **base.stack.model_dump(mode="json"),
            "run_dir": str(tmp_path / "run"),
            "ari_port": 8189,
            "sip_port": 5161,
            "redis_port": 6491,
            "asterisk_rtp_min": 11000,
            "asterisk_rtp_max": 11099,
        }
    )


def _pids_using(path: str) -> list[int]:
    pids = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if path in os.readlink(p / "root") or path in (p / "cmdline").read_text():
                    pids.append(int(p.name))
            except OSError:
                continue
    return pids


def test_stack_lifecycle_leaves_nothing_behind(real_stack, tmp_path: Path) -> None:
    s = _private_settings(tmp_path)
    first = stack.up(s)
    try:
        again = stack.up(s)  # harmless: the same processes
        assert (again.asterisk_pid, again.redis_pid) == (first.asterisk_pid, first.redis_pid)
        st = stack.status(s)
        assert st["running"] and st["ari_url"] == "http://127.0.0.1:8189/ari"
        assert st["redis_url"] == "redis://***@127.0.0.1:6491/0"  # its password is never printed
        assert _pids_using(str(s.stack.run_dir))
    finally:
        stopped = stack.down(s)
    assert set(stopped) == {first.asterisk_pid, first.redis_pid}
    assert not _pids_using(str(s.stack.run_dir)), "processes of the private stack survived down"
    assert stack.status(s)["running"] is False
    assert stack.down(s) == []  # down twice is harmless too


def test_port_in_use_is_named(real_stack, tmp_path: Path) -> None:
    s = _private_settings(tmp_path)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as blocker:
        blocker.bind(("127.0.0.1", s.stack.redis_port))
        blocker.listen()
        with pytest.raises(stack.StackError, match=r"TCP port 127\.0\.0\.1:6491 \(Redis\) is already in use"):
            stack.up(s)
    assert stack.status(s)["running"] is False


def test_corrupt_cached_rootfs_is_detected(tmp_path: Path) -> None:
    s = load_settings(stack={"cache_dir": str(tmp_path)})
    tar = rootfs.tarball_path(s)
    tar.write_bytes(b"not a tarball")
    tar.with_suffix(tar.suffix + ".sha256").write_text("0" * 64)
    assert not rootfs._tarball_ok(tar)
    tar.with_suffix(tar.suffix + ".sha256").write_text(rootfs._sha256(tar))
    assert rootfs._tarball_ok(tar)
    tar.write_bytes(b"truncated")  # changed after the checksum was taken
    assert not rootfs._tarball_ok(tar)


async def test_unsupported_caller_codec_is_rejected_cleanly(
    asterisk, settings: Settings, tmp_path: Path
) -> None:
    """A caller offering only G.722 gets a clean 488 from Asterisk; nothing reaches our app."""
    path = tmp_path / "g722.xml"
    path.write_text((HERE / "sipp_g722_rejected.xml").read_text().replace("CALLER_NUMBER", "+15550000000"))
    proc = await asyncio.create_subprocess_exec(
        "sipp", f"{settings.stack.bind}:{settings.stack.sip_port}", "-sf", str(path),
        "-s", settings.stack.extension, "-i", "127.0.0.1", "-p", "5073", "-m", "1",
        "-nostdin", "-timeout", "10s", "-timeout_error",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, cwd=tmp_path,
    )  # fmt: skip
    _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()[-500:]
    async with AriClient(settings.ari) as ari:
        assert [c for c in await ari.list_channels() if c.caller.number == "+15550000000"] == []


async def test_embedded_redis_requires_the_generated_password(real_stack, settings) -> None:
    import redis.asyncio as aioredis
    from redis.exceptions import AuthenticationError, ResponseError

    anonymous = aioredis.from_url(f"redis://{settings.stack.bind}:{settings.stack.redis_port}/0")
    try:
        with pytest.raises((AuthenticationError, ResponseError)):
            await anonymous.ping()
    finally:
        await anonymous.aclose()
    assert "@" in settings.redis.url, "the app's URL carries the generated password"
    app = aioredis.from_url(settings.redis.url)
    try:
        assert await app.ping()
    finally:
        await app.aclose()
    mode = (settings.stack.run_dir / "redis.password").stat().st_mode & 0o777
    assert mode == 0o600
