"""One fitted Understanding per session (the real MiniLM model; fitting takes ~1 s)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
import yaml

from ari_app.dialog.nlu import Understanding, build_understanding
from ari_app.dialog.nlu.settings import NluSettings

DATA = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "nlu_heldout.yaml"
# Wednesday, so "friday" / "next tuesday" / "the third" have one right answer.
NOW = datetime(2025, 6, 11, 10, 0)


@pytest.fixture(scope="session")
def training() -> dict:
    """The benchmark's training part (the tests' own held-out phrasings live in the tests)."""
    data = yaml.safe_load(DATA.read_text())
    return {"examples": data["train"], "negatives": data["negatives"]}


@pytest.fixture(scope="session")
def understanding(training: dict) -> Understanding:
    u = build_understanding(NluSettings())
    assert u.uses_embeddings, "MiniLM model packages should be installed in the dev venv"
    u.fit(training["examples"], training["negatives"])
    return u
