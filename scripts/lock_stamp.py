"""The fingerprint of what the lock is made from, written into requirements.lock's first line.

scripts/lock.sh writes it; tests/unit/test_lock.py recomputes it, so a change to the dependency
ranges in pyproject.toml (or to scripts/lock/*) without `make lock` fails the suite. Only the
inputs of the resolution count: editing the ruff settings does not ask for a new lock.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
PREFIX = "# lock-inputs-sha256: "


def inputs_digest(root: Path = ROOT) -> str:
    project = tomllib.loads((root / "pyproject.toml").read_text())
    inputs = {
        "requires-python": project["project"].get("requires-python"),
        "dependencies": project["project"].get("dependencies", []),
        "optional-dependencies": project["project"].get("optional-dependencies", {}),
        "build-system": project.get("build-system", {}).get("requires", []),
        "lock-files": {p.name: p.read_text() for p in sorted((root / "scripts/lock").glob("*"))},
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def recorded_digest(lock: Path = LOCK) -> str | None:
    first = lock.read_text().splitlines()[0] if lock.exists() else ""
    return first[len(PREFIX) :].strip() if first.startswith(PREFIX) else None


if __name__ == "__main__":
    print(PREFIX + inputs_digest())
    sys.exit(0)
