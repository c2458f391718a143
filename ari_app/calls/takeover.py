"""Adopting calls another instance left behind (crash, kill -9, restart).

Asterisk keeps the caller in our Stasis app when the instance that drove the call dies. The
session lease in Redis says who may drive it: once the dead owner's lease expires, exactly one
instance wins ``take_over`` and rebuilds the media path; the conversation resumes from the
state saved after the last turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from typing import Any

import structlog

from ari_app.ari.errors import AriNotFound
from ari_app.ari.models import Channel
from ari_app.calls.call import OWN_PREFIX, Call
from ari_app.session import CallRecord, SessionCorrupt

log = structlog.get_logger(__name__)


async def adopt_call(manager: Any, store: Any, ch: Channel) -> bool:
    """Try to take over one orphaned caller channel. Returns True when this instance now drives it."""
    if manager.is_ours(ch.id):
        return False
    manager.starting.add(ch.id)  # the sweeper and a reconnect pass never adopt one call twice
    try:
        return await _adopt(manager, store, ch)
    finally:
        manager.starting.discard(ch.id)


async def _adopt(manager: Any, store: Any, ch: Channel) -> bool:
    sid = resume = None
    record = None
    known = False  # a call another instance was driving (not a brand-new one it never claimed)
    if store is not None:
        sid = await store.by_channel(ch.id)
        known = sid is not None
        if sid:
            held, record = await _claim(store, sid)
            if not held:
                return False  # its owner is alive (or its lease has not expired yet)
        else:  # never claimed (its StasisStart was missed): claim it as a new call
            sid = uuid.uuid4().hex
            if not await store.claim_channel(ch.id, sid):
                return False
    if record is not None:
        cs = record.conversation_state
        resume = store.protector.reveal_conversation_state(cs) if cs else None
    args = ch.dialplan.app_data.split(",")[1:] if ch.dialplan.app_data else []
    call = Call(
        manager.settings, manager.ari, manager.events, ch, args, manager.new_transport, session_id=sid
    )
    if record is not None and await _with_agent(manager.ari, record):
        # Bridged to a person: leave them be; this instance only watches until one leaves.
        assert record.agent_channel_id is not None
        call.rejoined = True
        call.bridge_id, call.agent_channel_id = record.bridge_id, record.agent_channel_id
        call.agent_events = manager.events.subscribe(record.agent_channel_id)
        await manager.ari.subscribe(f"channel:{ch.id}", f"channel:{record.agent_channel_id}")
    else:
        # The dead instance's legs and bridges are named after the session: they must be gone
        # before the new Call recreates them (also when the record could not be read).
        if known:
            await _clear_leftovers(manager.ari, sid, record)
        await manager.ari.subscribe(f"channel:{ch.id}")
        if record is not None and record.status == "transferring":
            call.resume_transfer = record.transfer  # it was ringing a person: ring again
    call.resume_state = resume
    call.resumed = known  # a known call: the agent apologises before going on
    manager.run_call(call)
    log.info("takeover.adopted", channel=ch.id, session=sid, resumed=resume is not None)
    return True


async def _with_agent(ari: Any, record: CallRecord) -> bool:
    """The record says the caller was connected to a person, and that person is still there."""
    if record.status != "transferred" or not record.agent_channel_id or not record.bridge_id:
        return False
    try:
        await ari.get_channel(record.agent_channel_id)
    except Exception:
        return False
    return True


async def _claim(store: Any, sid: str) -> tuple[bool, CallRecord | None]:
    """Win the call's lease. Returns (won, record); record None = start the call afresh."""
    for _ in range(2):
        try:
            record = await store.take_over(sid)
        except SessionCorrupt as e:  # take_over won the lease before reading: start afresh
            log.error("takeover.record_unreadable", session=sid, error=str(e))
            return True, None
        if record is not None:
            return True, record
        if await store.leases.owner(sid):
            return False, None
        # Nobody holds it: the record is gone (take_over gave the lease back) or the old lease
        # lapsed just now. Take the lease; a second take_over then tells which.
        if not await store.leases.acquire(sid):
            return False, None
        if await store.get(sid) is None:
            return True, None
    return True, None


async def _clear_leftovers(ari: Any, sid: str, record: CallRecord | None) -> None:
    ids = [record.media_channel_id, record.agent_channel_id] if record else []
    media = {f"{OWN_PREFIX}media-{sid}", f"{OWN_PREFIX}agent-{sid}", *(i for i in ids if i)}
    bridges = {f"{OWN_PREFIX}br-{sid}", f"{OWN_PREFIX}hold-{sid}", f"{OWN_PREFIX}agentbr-{sid}",
               *([record.bridge_id] if record and record.bridge_id else [])}  # fmt: skip
    for cid in media:
        with contextlib.suppress(Exception):
            await ari.hangup(cid)
    for bid in bridges:
        with contextlib.suppress(Exception):
            await ari.destroy_bridge(bid)
    # Hang-up and bridge destruction complete asynchronously in Asterisk: creating the same ids
    # fails (409, 500) until they are gone.
    deadline = time.monotonic() + 2.0
    for cid in media:
        while time.monotonic() < deadline:
            try:
                await ari.get_channel(cid)
            except AriNotFound:
                break
            except Exception:
                return
            await asyncio.sleep(0.05)
    while time.monotonic() < deadline:
        try:
            if not bridges & {b.id for b in await ari.list_bridges()}:
                return
        except Exception:
            return
        await asyncio.sleep(0.05)
