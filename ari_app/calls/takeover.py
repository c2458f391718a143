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
from typing import Any

import structlog

from ari_app.ari.errors import AriNotFound
from ari_app.ari.models import Channel
from ari_app.calls.call import OWN_PREFIX, Call
from ari_app.session import CallRecord, SessionCorrupt

log = structlog.get_logger(__name__)


async def adopt_call(manager: Any, store: Any, ch: Channel) -> bool:
    """Try to take over one orphaned caller channel. Returns True when this instance now drives it."""
    if ch.id in manager.calls:
        return False
    sid = resume = None
    record = None
    if store is not None:
        sid = await store.by_channel(ch.id)
        if sid:
            held, record = await _claim(store, sid)
            if not held:
                return False  # its owner is alive (or its lease has not expired yet)
    if record is not None:
        cs = record.conversation_state
        resume = store.protector.reveal_conversation_state(cs) if cs else None
    # The dead instance's media leg and bridge are named after the session: they must be gone
    # before the new Call recreates them (also when the record could not be read).
    if sid:
        await _clear_leftovers(manager.ari, sid, record)
    if ch.id in manager.calls:  # adopted meanwhile by a reconnect pass
        return False
    await manager.ari.subscribe(f"channel:{ch.id}")
    args = ch.dialplan.app_data.split(",")[1:] if ch.dialplan.app_data else []
    call = Call(
        manager.settings, manager.ari, manager.events, ch, args, manager.new_transport, session_id=sid
    )
    call.resume_state = resume
    call.resumed = sid is not None  # a known call: the agent apologises before going on
    manager.calls[ch.id] = call
    manager.tasks[ch.id] = asyncio.create_task(manager._supervise(call), name=f"call-{ch.id}")
    log.info("takeover.adopted", channel=ch.id, session=sid, resumed=resume is not None)
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
    media = {
        f"{OWN_PREFIX}media-{sid}",
        *([record.media_channel_id] if record and record.media_channel_id else []),
    }
    bridges = {f"{OWN_PREFIX}br-{sid}", *([record.bridge_id] if record and record.bridge_id else [])}
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
