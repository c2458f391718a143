"""outbound: a campaign's state in Redis — and why a restart never calls anyone twice.

Why: a campaign outlives processes. Every contact has a hash (status, attempts, next attempt,
last outcome, the call's session); the contacts due are a ZSET by time. The dialer *claims* a
contact (pending -> dialing, attempt + 1, a fresh attempt id) before anything else, marks it
*originating* just before it asks Asterisk for the call, and *records* the outcome once per
attempt id. After a crash ``recover`` looks at what was left in ``dialing``: never originated
-> back in the queue (nobody was called); originated and the call still live -> left alone;
originated and gone -> ``interrupted``: reported, never re-dialled automatically, since we cannot
know whether the person was reached. Only one dialer runs a campaign at a time (recover assumes
no other is mid-call).

Contact statuses: pending (not attempted yet, or put back by the window), dialing, deferred
(waiting for a retry), done (answered), failed (not reached after the last attempt), dnc,
interrupted. Campaign statuses: running, paused, cancelled (final), done.

A contact's details (number, name, the flow's inputs) and its flow result are caller data: they
are stored sealed with ``session.encryption_key`` (``RecordCipher``), never in clear; the ids,
statuses and counters are not.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from ari_app.outbound import scripts
from ari_app.outbound.campaign import CampaignSpec
from ari_app.outbound.contacts import Contact
from ari_app.outbound.outcomes import ANSWERED, RETRYABLE, Outcome
from ari_app.outbound.records import (
    CONTACT_STATUSES,
    CampaignStatus,
    Claim,
    ContactResult,
    Recovery,
    contact_result,
    field_str,
)
from ari_app.session.cipher import RecordCipher

_LOAD_BATCH = 500


@dataclass(frozen=True)
class CampaignKeys:
    """Key names of the outbound side, under the same prefix as ``session.keys.Keys``."""

    prefix: str = "iva"

    @property
    def dnc(self) -> str:
        """Set of keyed digests of the normalised numbers never to call (dnc.py)."""
        return f"{self.prefix}:dnc"

    @property
    def dnc_reasons(self) -> str:
        """Hash digest -> why and when it was added."""
        return f"{self.prefix}:dnc:reasons"

    def campaign(self, name: str) -> str:
        return f"{self.prefix}:campaign:{name}"

    def contact_prefix(self, name: str) -> str:
        return f"{self.prefix}:campaign:{name}:contact:"

    def contact(self, name: str, contact_id: str) -> str:
        return self.contact_prefix(name) + contact_id

    def order(self, name: str) -> str:
        """List of contact ids in the order they were loaded (for results)."""
        return f"{self.prefix}:campaign:{name}:order"

    def due(self, name: str) -> str:
        """ZSET contact id -> epoch second it may be claimed."""
        return f"{self.prefix}:campaign:{name}:due"

    def dialing(self, name: str) -> str:
        return f"{self.prefix}:campaign:{name}:dialing"

    def spec(self, name: str) -> str:
        """The campaign file as it was started (JSON): what the service's runner dials from."""
        return f"{self.prefix}:campaign:{name}:spec"

    @property
    def campaigns(self) -> str:
        """Set of campaign names started here (running, paused or over)."""
        return f"{self.prefix}:campaigns"


class CampaignState:
    def __init__(
        self, redis: aioredis.Redis, spec: CampaignSpec, keys: CampaignKeys, cipher: RecordCipher
    ) -> None:
        cipher.require(f"campaign {spec.name!r}'s contacts")
        self.redis, self.spec, self.keys, self.cipher = redis, spec, keys, cipher
        self.name = spec.name
        n, k = self.name, self.keys
        self._campaign, self._due, self._dialing = k.campaign(n), k.due(n), k.dialing(n)
        self._load = redis.register_script(scripts.LOAD)
        self._claim = redis.register_script(scripts.CLAIM)
        self._originating = redis.register_script(scripts.ORIGINATING)
        self._release = redis.register_script(scripts.RELEASE)
        self._finish = redis.register_script(scripts.FINISH)
        self._set_status = redis.register_script(scripts.SET_STATUS)

    def _key(self, contact_id: str) -> str:
        return self.keys.contact(self.name, contact_id)

    def _moving(self, contact_id: str) -> list[str]:
        return [self._key(contact_id), self._campaign, self._due, self._dialing]

    async def load(self, contacts: Iterable[Contact], now: float | None = None) -> tuple[int, int]:
        """Upsert: new contacts become pending; existing ones keep their state (a never-attempted
        pending one takes new details). Returns (added, updated)."""
        now = time.time() if now is None else now
        spec = self.spec.model_dump_json()
        added = updated = 0
        batch = list(contacts)
        for i in range(0, max(len(batch), 1), _LOAD_BATCH):
            part = batch[i : i + _LOAD_BATCH]
            args: list[Any] = [now, self.name, self.spec.flow, spec]
            for j, c in enumerate(part, start=i):
                doc = c.model_dump_json()
                args += [c.id, self.cipher.seal(doc), now - (len(batch) - j) * 1e-6, self.cipher.digest(doc)]
            keys = [self._campaign, self.keys.order(self.name), self._due, *(self._key(c.id) for c in part)]
            a, u = await self._load(keys=keys, args=args)
            added, updated = added + int(a), updated + int(u)
        return added, updated

    async def claim_next(self, now: float | None = None) -> Claim | None:
        """Atomically take one due contact for dialing (None when none is due or not running)."""
        now = time.time() if now is None else now
        attempt_id = uuid.uuid4().hex  # the originator may prefix it (e.g. a channel id)
        got = await self._claim(
            keys=[self._campaign, self._due, self._dialing],
            args=[now, attempt_id, self.keys.contact_prefix(self.name)],
        )
        if not got:
            return None
        return Claim(Contact.model_validate_json(self.cipher.open(got[1].decode())), attempt_id, int(got[2]))

    async def mark_originating(self, claim: Claim, now: float | None = None) -> bool:
        """Just before the call is placed. False: paused/cancelled since the claim, do not call."""
        now = time.time() if now is None else now
        keys = [self._key(claim.contact.id), self._campaign]
        return bool(await self._originating(keys=keys, args=[claim.attempt_id, now]))

    async def release(self, claim: Claim, next_at: float, now: float | None = None) -> bool:
        """Give back a claim that was never dialled; due again at ``next_at``."""
        return await self._release_id(claim.contact.id, claim.attempt_id, next_at, now)

    async def _release_id(self, contact_id: str, attempt_id: str, next_at: float, now: float | None) -> bool:
        now = time.time() if now is None else now
        args = [attempt_id, next_at, now, contact_id]
        return bool(await self._release(keys=self._moving(contact_id), args=args))

    async def record_outcome(
        self,
        contact_id: str,
        attempt_id: str,
        outcome: Outcome,
        *,
        cause: int | None = None,
        session_id: str | None = None,
        flow_result: dict[str, Any] | None = None,
        duration_s: float = 0.0,
        now: float | None = None,
    ) -> str:
        """End one attempt (idempotent per attempt id); returns the contact's status after it."""
        now = time.time() if now is None else now
        next_at = now + self.spec.retries.backoff_s.after(outcome)
        fields = [
            outcome.value, "" if cause is None else cause, session_id or "",
            self.cipher.seal(json.dumps(flow_result)) if flow_result is not None else "", duration_s,
            int(outcome in RETRYABLE), int(outcome in ANSWERED), self.spec.retries.max_attempts, next_at,
        ]  # fmt: skip
        return await self._end(contact_id, attempt_id, "outcome", now, fields)

    async def mark_dnc(self, claim: Claim, reason: str, now: float | None = None) -> str:
        """The claimed contact is on the do-not-call list: never dialled, never again."""
        now = time.time() if now is None else now
        return await self._end(claim.contact.id, claim.attempt_id, "dnc", now, reason=reason)

    async def _end(
        self, contact_id: str, attempt_id: str, mode: str, now: float, fields: list[Any] | None = None,
        reason: str = "",
    ) -> str:  # fmt: skip
        """FINISH; ``fields`` are its outcome arguments (ARGV 5-13), none for dnc/interrupted."""
        args = [attempt_id, contact_id, now, mode, *(fields or ["", "", "", "", 0, 0, 0, 0, 0]), reason]
        _changed, status = await self._finish(keys=self._moving(contact_id), args=args)
        return status.decode() if isinstance(status, bytes) else str(status)

    async def attempt_of(self, contact_id: str) -> str:
        """The attempt id of the contact's current (or last) call."""
        raw = await self.redis.hget(self._key(contact_id), "attempt_id")
        return raw.decode() if raw else ""

    async def recover(self, is_live: Callable[[str], Awaitable[bool]], now: float | None = None) -> Recovery:
        """After a restart: settle contacts a dead dialer left in ``dialing`` (see the module doc).
        ``is_live`` is asked with the attempt id the originator named the call by."""
        now = time.time() if now is None else now
        out = Recovery()
        for raw_id in await self.redis.smembers(self._dialing):
            cid = raw_id.decode()
            status, attempt_id, originating = (
                v.decode() if v is not None else "" for v in
                await self.redis.hmget(self._key(cid), ["status", "attempt_id", "originating"])
            )  # fmt: skip
            if status != "dialing":
                await self.redis.srem(self._dialing, cid)  # stale
            elif originating != attempt_id:
                await self._release_id(cid, attempt_id, now, now)
                out.returned.append(cid)
            elif await is_live(attempt_id):
                out.live.append(cid)
            else:
                reason = "the dialer stopped during this call; not re-dialled"
                await self._end(cid, attempt_id, "interrupted", now, reason=reason)
                out.interrupted.append(cid)
        return out

    async def _to(self, status: str, reason: str, allowed_from: tuple[str, ...]) -> bool:
        keys = [self._campaign, self._due, self._dialing]
        return bool(await self._set_status(keys=keys, args=[status, reason, time.time(), *allowed_from]))

    async def pause(self, reason: str) -> bool:
        return await self._to("paused", reason, ("running",))

    async def resume(self) -> bool:
        return await self._to("running", "", ("paused",))

    async def reopen(self) -> bool:
        """A finished campaign started again with new contacts runs again (cancelled stays so)."""
        return await self._to("running", "", ("done",))

    async def cancel(self, reason: str = "cancelled") -> bool:
        """Final: nothing more is dialled. Calls in progress are not hung up."""
        return await self._to("cancelled", reason, ("running", "paused", "done"))

    async def mark_done(self) -> bool:
        """Running -> done, only when nothing is due or dialing any more."""
        return await self._to("done", "", ("running",))

    async def campaign_status(self) -> str:
        return (await self.redis.hget(self._campaign, "status") or b"").decode()

    async def status(self) -> CampaignStatus:
        raw: dict[bytes, bytes] = await self.redis.hgetall(self._campaign)
        counts = {s: int(field_str(raw, f"n:{s}", "0")) for s in CONTACT_STATUSES}
        outcomes = {
            o.value: int(field_str(raw, f"o:{o.value}", "0"))
            for o in Outcome
            if field_str(raw, f"o:{o.value}")
        }
        return CampaignStatus(
            self.name, field_str(raw, "status"), field_str(raw, "reason"), counts, outcomes,
            int(field_str(raw, "attempts", "0")), float(field_str(raw, "created", "0")),
            float(field_str(raw, "updated", "0")),
        )  # fmt: skip

    async def next_due(self) -> float | None:
        """When the earliest scheduled contact is due (epoch), None when none is scheduled."""
        first = await self.redis.zrange(self._due, 0, 0, withscores=True)
        return float(first[0][1]) if first else None

    async def contact(self, contact_id: str) -> ContactResult | None:
        raw = await self.redis.hgetall(self._key(contact_id))
        return contact_result(raw, self.cipher) if raw else None

    async def results(self) -> list[ContactResult]:
        """Every contact in load order."""
        ids = [i.decode() for i in await self.redis.lrange(self.keys.order(self.name), 0, -1)]
        out: list[ContactResult] = []
        for i in range(0, len(ids), _LOAD_BATCH):
            pipe = self.redis.pipeline(transaction=False)
            for cid in ids[i : i + _LOAD_BATCH]:
                pipe.hgetall(self._key(cid))
            out += [contact_result(raw, self.cipher) for raw in await pipe.execute() if raw]
        return out
