"""calls: the janitor — what a crash left behind is found and released.

Why: an instance that dies mid-call leaves Redis records nobody will end (no TTL refresh, still in
``calls:active``) and ``iva-*`` media legs, agent legs and bridges in Asterisk. Calls whose
caller is still in Stasis are the takeover's job (it clears their leftovers itself); the janitor
handles the rest: a session nobody leases whose caller is gone is ended ("abandoned", so its
keys expire), and an ``iva-*`` object whose session is neither leased nor waiting for takeover
is destroyed once it has been seen so on two passes in a row (never one that is being built).

A worker (ari.mode = outbound) has no REST route of its own: it sweeps Asterisk over one of its
live calls' websockets (that call's Asterisk only; skipped while it has no call), and, since a
caller on another Asterisk box cannot be seen from there, it ends a session only once it has
been orphaned for ``abandon_after_s`` — far longer than Asterisk's reconnect and an adoption take.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from prometheus_client import Counter

from ari_app.session import SessionCorrupt

log = structlog.get_logger(__name__)

EVERY_S = 30.0
# Worker mode: a session unleased this long is abandoned. Asterisk reconnects a dead worker's
# call at once and the adopting worker leases it within 3 lease lifetimes + a few seconds.
WORKER_ABANDON_AFTER_S = 120.0
OWN_OBJECT = re.compile(r"^iva-(?:br|hold|agentbr|media|agent)-(?P<sid>[A-Za-z0-9_.:-]+)$")
CLEANED = Counter("iva_janitor_cleaned_total", "Leftovers the janitor released", ["kind"])


@dataclass
class Janitor:
    manager: Any  # CallManager
    store: Any  # SessionStore
    suspects: set[str] = field(default_factory=set)  # objects seen orphaned on the last pass
    # Worker mode: the REST client to sweep Asterisk with now (None: skip that part this pass),
    # and how long a session must stay orphaned before it is ended.
    rest: Callable[[], Any | None] | None = None
    abandon_after_s: float | None = None
    orphaned_since: dict[str, float] = field(default_factory=dict)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(EVERY_S)
            await self.sweep()

    async def sweep(self) -> dict[str, int]:
        """One pass; returns what it released (for logs and tests)."""
        ari = self.rest() if self.rest is not None else self.manager.ari
        channels = await ari.list_channels() if ari is not None else []
        live = {c.id for c in channels}
        if self.abandon_after_s is not None:
            ended = await self._end_long_orphaned(self.abandon_after_s)
        else:
            ended = await self._end_abandoned(live)
        forgotten = len(await self.store.forget_missing())
        released = await self._release_objects(ari, channels, live) if ari is not None else 0
        done = {"ended": ended, "forgotten": forgotten, "released": released}
        if ended or forgotten or released:
            log.info("janitor.swept", **done)
        return done

    async def _release_objects(self, ari: Any, channels: list[Any], live: set[str]) -> int:
        """Destroy ``iva-*`` channels and bridges orphaned on this pass and the last one."""
        objects = [(c.id, "channel") for c in channels if c.id.startswith("iva-")]
        objects += [(b.id, "bridge") for b in await ari.list_bridges() if b.id.startswith("iva-")]
        suspects: set[str] = set()
        released = 0
        for oid, kind in objects:
            m = OWN_OBJECT.match(oid)
            if m is None or not await self._orphaned(m["sid"], live):
                continue
            if oid not in self.suspects:
                suspects.add(oid)  # released on the next pass if still orphaned
                continue
            with contextlib.suppress(Exception):
                await (ari.hangup(oid) if kind == "channel" else ari.destroy_bridge(oid))
                released += 1
                CLEANED.labels(kind).inc()
        self.suspects = suspects
        return released

    async def _end_abandoned(self, live: set[str]) -> int:
        n = 0
        for sid in await self.store.leases.orphaned_sessions():
            try:
                rec = await self.store.get(sid)
            except SessionCorrupt as e:
                rec = None
                channel = e.salvaged.get("channel_id")
            else:
                channel = rec.channel_id if rec else None
            if channel in live:
                continue  # the caller is still there: the takeover adopts it
            with contextlib.suppress(Exception):
                await self.store.end(sid, "abandoned")
                n += 1
                CLEANED.labels("record").inc()
        return n

    async def _end_long_orphaned(self, after_s: float) -> int:
        """End the sessions nobody has leased on every pass for ``after_s`` seconds."""
        now = time.monotonic()
        orphaned = set(await self.store.leases.orphaned_sessions())
        self.orphaned_since = {sid: self.orphaned_since.get(sid, now) for sid in orphaned}
        n = 0
        for sid, since in self.orphaned_since.items():
            if now - since < after_s:
                continue
            with contextlib.suppress(Exception):
                await self.store.end(sid, "abandoned")
                n += 1
                CLEANED.labels("record").inc()
        return n

    async def _orphaned(self, sid: str, live: set[str]) -> bool:
        """Nobody drives this session's objects, and no takeover will want them."""
        if any(c.info.session_id == sid for c in self.manager.calls.values()):
            return False
        if await self.store.leases.owner(sid):
            return False
        try:
            rec = await self.store.get(sid)
        except SessionCorrupt as e:
            return e.salvaged.get("channel_id") not in live
        return rec is None or rec.channel_id not in live
