"""Which machine a benchmark ran on (goes into every results file)."""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict[str, str | int]:
    return {
        "nproc": os.cpu_count() or 0,
        "cpu_model": cpu_model(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def heading(title: str, result: dict[str, Any], script: str) -> list[str]:
    """A results page's first lines: its title, and when, on what and by which script it ran."""
    machine = result.get("machine", {})
    return [f"# {title}", "", f"{machine.get('date', '')} · {machine.get('cpu_model', '')} · `{script}`", ""]


def write_results(out: Path, name: str, result: dict[str, Any], md: list[str]) -> None:
    """Keep the raw JSON (with the machine) and the page beside it: ``out/name.json``, ``.md``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / f"{name}.md").write_text("\n".join(md) + "\n")
