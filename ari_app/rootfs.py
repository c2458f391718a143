"""The embedded stack's Asterisk root filesystem: built once from Debian sid, cached, unpacked,
and the versions it got recorded.

Why a chroot: Debian 12 has no Asterisk package and sid's must not be installed into the host
(it would upgrade libc). ``mmdebstrap`` builds a sid root filesystem once; it is cached as a
tarball keyed by our package list and unpacked next to it (``stack.py`` runs it).

Which versions: the cache key covers only package names, so a build takes whatever sid carries
that day. Debian sid keeps only the newest version, so these cannot be pinned; the suite records
what it was green on and warns on a difference. Each build writes a manifest of the installed
``asterisk*`` packages next to the tarball (``<tarball>.versions``, one ``name version`` a line,
sorted); ``asterisk/versions-green.txt`` (same format, committed) holds the versions the test
suite last passed on, and ``stack build``/``up``/``status`` and the pytest header warn when they
differ.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ari_app.config import Settings

ROOTFS_PACKAGES = ("asterisk", "asterisk-moh-opsound-gsm")
ROOTFS_SUITE = "sid"
REPO_ROOT = Path(__file__).resolve().parent.parent
GREEN_VERSIONS = REPO_ROOT / "asterisk" / "versions-green.txt"
VERSIONED_PREFIX = "asterisk"  # Asterisk itself, its modules, config and sound packages


class StackError(Exception):
    """Something prevents the stack from starting; the message says what and how to fix it."""


def say(msg: str) -> None:
    print(f"[stack] {msg}", file=sys.stderr, flush=True)


def require_root(what: str) -> None:
    if os.geteuid() != 0:
        raise StackError(f"{what} needs root (chroot); run as root or point ari-app at your own Asterisk")


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


def build_rootfs(s: Settings, force: bool = False) -> Path:
    """Build (or reuse) the cached Asterisk rootfs tarball; rebuilt when missing or corrupt."""
    tar = tarball_path(s)
    if not force and _tarball_ok(tar):
        return tar
    if tar.exists() and not force:
        say(f"cached rootfs {tar} is incomplete or corrupt: rebuilding")
    manifest_path(s).unlink(missing_ok=True)  # it described the old tarball
    require_root("building the Asterisk rootfs")
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
        say(f"building the Asterisk 22 rootfs from Debian {ROOTFS_SUITE} (attempt {attempt}, ~1-2 min)")
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout
        tail: list[str] = []
        for line in proc.stdout:
            line = line.rstrip()
            tail = [*tail[-20:], line]
            if line.startswith("I:") or "Get:" in line[:8]:
                say(f"  {line[:110]}")
        if proc.wait() == 0:
            tmp.replace(tar)
            tar.with_suffix(tar.suffix + ".sha256").write_text(_sha256(tar))
            shutil.rmtree(rootfs_dir(s), ignore_errors=True)
            say(f"rootfs built in {time.monotonic() - t0:.0f} s: {tar} ({tar.stat().st_size >> 20} MB)")
            record_versions(s)
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
    say(f"unpacking {tar.name}")
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


# --------------------------------------------------------------------------- versions

MANIFEST_HEADER = (
    "# asterisk* packages installed in the Debian sid rootfs (name version). sid keeps only the newest\n"
    "# version, so they cannot be pinned: ari-app compares them with asterisk/versions-green.txt.\n"
)
NOT_BUILT = "Asterisk rootfs not built yet (ari-app stack build)"


@dataclass(frozen=True)
class VersionDiff:
    """One package whose version differs from the green list (``None``: absent on that side)."""

    package: str
    green: str | None
    got: str | None


def manifest_path(s: Settings) -> Path:
    tar = tarball_path(s)
    return tar.with_suffix(tar.suffix + ".versions")


def parse_dpkg_status(text: str, prefix: str = VERSIONED_PREFIX) -> dict[str, str]:
    """``{package: version}`` of the installed packages named ``prefix*`` in a
    ``/var/lib/dpkg/status`` file (RFC 822-style stanzas separated by blank lines; a
    removed package whose config files remain has ``Status: deinstall ok config-files``)."""
    found: dict[str, str] = {}
    stanza: dict[str, str] = {}

    def flush() -> None:
        name, version = stanza.get("Package", ""), stanza.get("Version", "")
        installed = stanza.get("Status", "").split()[-1:] == ["installed"]
        if installed and name.startswith(prefix) and version:
            found[name] = version
        stanza.clear()

    for line in text.splitlines():
        if not line.strip():
            flush()
        elif line[0] in " \t":
            continue  # continuation of a multi-line field (Description, Conffiles, ...)
        else:
            key, _, value = line.partition(":")
            stanza[key.strip()] = value.strip()
    flush()
    return found


def format_manifest(versions: dict[str, str]) -> str:
    return MANIFEST_HEADER + "".join(f"{name} {versions[name]}\n" for name in sorted(versions))


def parse_manifest(text: str) -> dict[str, str]:
    """Read a manifest or ``versions-green.txt``: ``name version`` lines; ``#`` comments ignored."""
    versions: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition(" ")
            versions[name] = version.strip()
    return versions


def compare_versions(green: dict[str, str], got: dict[str, str]) -> list[VersionDiff]:
    return [
        VersionDiff(name, green.get(name), got.get(name))
        for name in sorted(green.keys() | got.keys())
        if green.get(name) != got.get(name)
    ]


def versions_warning(diffs: list[VersionDiff], manifest: Path, green_file: Path = GREEN_VERSIONS) -> str:
    """The multi-line warning for a rootfs that differs from the green list ("" when it does not)."""
    if not diffs:
        return ""
    lines = [f"the Asterisk rootfs differs from the versions the suite was last green on ({green_file}):"]
    for d in diffs:
        lines.append(f"  {d.package}: green {d.green or '(absent)'}, got {d.got or '(absent)'}")
    lines += [
        "Debian sid keeps only the newest version, so these cannot be pinned; the suite records what it "
        "was green on and warns on a difference. Run the test suite; if it is green, accept them with:",
        f"  cp {manifest} {green_file}",
    ]
    return "\n".join(lines)


def _dpkg_status_text(s: Settings) -> str | None:
    """The rootfs's dpkg status: from the unpacked rootfs when it matches the tarball (cheap),
    else from the tarball itself; ``None`` when neither exists."""
    tar = tarball_path(s)
    root = rootfs_dir(s)
    marker = root / ".ari-app-unpacked"
    status_file = root / "var/lib/dpkg/status"
    try:
        if marker.read_text() == tar.name and status_file.exists():
            return status_file.read_text(errors="replace")
    except OSError:
        pass
    if not tar.exists():
        return None
    for member in ("./var/lib/dpkg/status", "var/lib/dpkg/status"):
        r = subprocess.run(["tar", "--zstd", "-xOf", str(tar), member], capture_output=True)
        if r.returncode == 0 and r.stdout:
            return r.stdout.decode(errors="replace")
    raise StackError(f"{tar} holds no var/lib/dpkg/status; rebuild it: ari-app stack build --force")


def record_versions(s: Settings) -> dict[str, str] | None:
    """Write the manifest of the rootfs's ``asterisk*`` package versions; ``None``: not built."""
    text = _dpkg_status_text(s)
    if text is None:
        return None
    versions = parse_dpkg_status(text)
    man = manifest_path(s)
    try:
        man.parent.mkdir(parents=True, exist_ok=True)
        man.write_text(format_manifest(versions))
    except OSError as e:  # e.g. a read-only cache: the versions are still shown
        say(f"could not write {man}: {e.strerror}")
    return versions


def rootfs_versions(s: Settings) -> dict[str, str] | None:
    """The recorded versions (the manifest is written on first use for an older cached rootfs);
    ``None`` when there is no rootfs yet."""
    tar = tarball_path(s)
    if not tar.exists() and not (rootfs_dir(s) / ".ari-app-unpacked").exists():
        return None
    man = manifest_path(s)
    if man.exists():
        return parse_manifest(man.read_text())
    return record_versions(s)


def green_versions(green_file: Path = GREEN_VERSIONS) -> dict[str, str] | None:
    try:
        return parse_manifest(green_file.read_text())
    except FileNotFoundError:
        return None


def versions_report(s: Settings, green_file: Path = GREEN_VERSIONS) -> dict:
    """What the rootfs got and how it compares with the green list (for ``status`` and pytest)."""
    got = rootfs_versions(s)
    if got is None:
        return {"built": False, "message": NOT_BUILT}
    man = manifest_path(s)
    green = green_versions(green_file)
    if green is None:
        diffs: list[VersionDiff] = []
        warning = (
            f"{green_file} is missing; once the suite is green, record the versions: cp {man} {green_file}"
        )
    else:
        diffs = compare_versions(green, got)
        warning = versions_warning(diffs, man, green_file)
    return {
        "built": True,
        "manifest": str(man),
        "packages": got,
        "green_file": str(green_file),
        "matches_green": green is not None and not diffs,
        "differences": [asdict(d) for d in diffs],
        "warning": warning or None,
    }


def versions_summary(report: dict) -> str:
    """One line: ``asterisk 1:22.10.1~dfsg-1, asterisk-modules ...`` (or "not built yet")."""
    if not report["built"]:
        return report["message"]
    return ", ".join(f"{name} {version}" for name, version in report["packages"].items()) or "(none)"


# --------------------------------------------------------------------------- config
