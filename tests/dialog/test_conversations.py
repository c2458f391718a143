"""YAML conversation transcripts (tests/dialog/conversations/) against the real understanding
and the demo backend on a loopback port."""

from __future__ import annotations

import pytest

from ari_app.dialog.nlu import build_understanding
from tests.dialog.harness import load_conversations, run_conversation

CASES = load_conversations()


@pytest.fixture(scope="module")
def nlu():
    return build_understanding()


@pytest.mark.models
@pytest.mark.parametrize("name,spec", CASES, ids=[c[0] for c in CASES])
async def test_conversation(name, spec, nlu, backend):
    await run_conversation(spec, nlu)
