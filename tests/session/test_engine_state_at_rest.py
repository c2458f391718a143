"""The dialogue state exactly as the engine writes it (slots inside frames, half-heard digit
strings, read-back prompts) reaches the real Redis with no sensitive value in clear, and a
takeover gets the values back. Fed by a real engine run, not a hand-made dict."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import redis.asyncio as aioredis
import yaml
from cryptography.fernet import Fernet

from ari_app.dialog.loader import load_flows
from ari_app.dialog.nlu import build_understanding
from tests.dialog.harness import run_conversation, start_backend
from tests.redis_scan import values_of
from tests.session.conftest import StoreFactory, new_record

pytestmark = [pytest.mark.stack, pytest.mark.models]

DOB = "1985-04-12"
ROOT = Path(__file__).resolve().parents[2]
CONVERSATIONS = ROOT / "tests" / "dialog" / "conversations"


async def _engine_state() -> dict:
    runner, url = await start_backend()
    os.environ["DEMO_BACKEND_URL"] = url
    try:
        spec = {"turns": [{"caller": "I need to reschedule my appointment"},
                          {"caller": "5 5 5 1 2 3 4 5 6 7"}, {"caller": "April 12th 1985"}]}  # fmt: skip
        out = await run_conversation(spec, build_understanding(), check=False)
    finally:
        await runner.cleanup()
    state = out.turns[-1].state.to_dict()
    assert any(f["slots"].get("dob") == DOB for f in state["frames"]), "the engine did not fill dob"
    return state


async def _everything(redis: aioredis.Redis, prefix: str) -> bytes:
    return await values_of(redis, [k async for k in redis.scan_iter(match=f"{prefix}:*")])


@pytest.mark.parametrize("encrypted", [True, False], ids=["with-key", "masked"])
async def test_engine_state_has_no_sensitive_value_in_redis(
    make_store: StoreFactory, redis: aioredis.Redis, encrypted: bool
) -> None:
    state = await _engine_state()
    state["last_prompt"] = f"So your date of birth is {DOB}?"  # a read-back of a sensitive value
    state["frames"][-1]["partial"] = {"dob": DOB}
    key = {"encryption_key": Fernet.generate_key().decode()} if encrypted else {}
    store = await make_store(**key)
    rec = new_record(sensitive_slots=["dob"])
    await store.create(rec)
    await store.save_turn(rec.session_id, state)

    blob = await _everything(redis, store.keys.prefix)
    for leak in (DOB.encode(), b"1985", b"April 12"):
        assert leak not in blob, f"{leak!r} is stored in clear"
    got = await store.get(rec.session_id)
    assert got is not None
    back = store.protector.reveal_conversation_state(got.conversation_state)
    dob = next(f["slots"]["dob"] for f in back["frames"] if "dob" in f["slots"])
    if encrypted:  # a takeover resumes with what the caller said
        assert dob == DOB and back["last_prompt"].endswith(f"{DOB}?")
    else:  # no key: masked, never recoverable
        assert dob.startswith("****") and back["last_prompt"] == ""


# Every reference flow that keeps caller data, played by its conversation test: every turn's
# state (as the engine wrote it) goes through the real store, the way the agent saves turns.
REFERENCE_CALLS = ["appointments_happy", "billing_refund", "orders_status", "reminder_confirm"]


@pytest.mark.parametrize("name", REFERENCE_CALLS)
async def test_every_reference_flow_keeps_caller_data_sealed_at_every_turn(
    make_store: StoreFactory, redis: aioredis.Redis, name: str
) -> None:
    spec = yaml.safe_load((CONVERSATIONS / f"{name}.yaml").read_text())
    runner, url = await start_backend()
    os.environ["DEMO_BACKEND_URL"] = url
    try:
        out = await run_conversation(spec, build_understanding(), check=False)
    finally:
        await runner.cleanup()
    store = await make_store(encryption_key=Fernet.generate_key().decode())
    rec = new_record()
    await store.create(rec)
    sensitive = sorted(
        {
            s
            for f in load_flows([ROOT / "flows"]).flows.values()
            for s, slot in f.slots.items()
            if slot.sensitive
        }
    )
    for turn in out.turns:
        await store.save_turn(rec.session_id, turn.state.to_dict(), sensitive_slots=sensitive)

    blob = await _everything(redis, store.keys.prefix)
    for leak in (DOB.encode(), b"1985", b"April 12"):
        assert leak not in blob, f"{name}: {leak!r} is stored in clear"
    final = out.turns[-1].state.to_dict()
    got = await store.get(rec.session_id)
    assert got is not None
    for frame in got.conversation_state["frames"]:
        assert all(str(v).startswith("enc:") for v in frame["results"].values()), (
            f"{name}: a tool result is stored in clear: {frame['results']}"
        )
    back = store.protector.reveal_conversation_state(got.conversation_state)
    # a takeover gets exactly what the engine had: every slot and every tool result
    assert [(f["slots"], f["results"]) for f in back["frames"]] == [
        (f["slots"], f["results"]) for f in final["frames"]
    ], name
