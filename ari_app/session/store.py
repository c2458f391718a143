"""Call state in Redis: one record per call, written every turn, readable by any instance.

Layout (``<p>`` = session.key_prefix):
  <p>:call:<id>             hash, one JSON value per CallRecord field
  <p>:call:<id>:transcript  list of TranscriptEntry JSON (append-only)
  <p>:call:<id>:metrics     list of per-turn timing dicts (append-only)
  <p>:call:<id>:events      stream of call events (XADD ... MAXLEN ~)
  <p>:channel:<channel_id>  -> session id
  <p>:calls:active          set of calls not yet ended (orphan candidates)
  <p>:lease:<id>            owning instance (see lease.py)

Why a hash plus lists, written by a Lua script, rather than one JSON document with WATCH: a turn
then costs one round trip carrying only the new conversation state and the new transcript lines
(a JSON document would be re-sent whole, growing with the call, and WATCH retries under
contention). The script is atomic and skips a turn number already stored, so replaying buffered
writes after an ambiguous failure (Redis died before answering) cannot duplicate transcript lines.
Corruption stays local too: a broken field spoils that field, and the rest is salvaged.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from ari_app.session import metrics as prom
from ari_app.session.keys import Keys
from ari_app.session.lease import LeaseManager
from ari_app.session.masking import SlotProtector
from ari_app.session.models import HASH_FIELDS, NOT_UPDATABLE, CallRecord, TranscriptEntry, now
from ari_app.session.resilient import RedisUnavailable, ResilientRedis, SessionStoreUnavailable
from ari_app.session.settings import SessionSettings

if TYPE_CHECKING:
    from ari_app.config import RedisSettings

log = logging.getLogger(__name__)

__all__ = ["CallEvent", "SessionCorrupt", "SessionNotFound", "SessionStore", "SessionStoreUnavailable"]

SAVE_TURN = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local stored = tonumber(redis.call('HGET', KEYS[1], 'turn') or '0') or 0
if tonumber(ARGV[1]) <= stored then return 0 end
redis.call('HSET', KEYS[1], 'turn', ARGV[1], 'conversation_state', ARGV[2])
local n = tonumber(ARGV[6])
for i = 1, n do redis.call('RPUSH', KEYS[2], ARGV[6 + i]) end
for i = 7 + n, #ARGV do redis.call('RPUSH', KEYS[3], ARGV[i]) end
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[3], '*', 'type', 'turn', 'at', ARGV[4], 'data', ARGV[1])
for i = 1, 4 do redis.call('EXPIRE', KEYS[i], ARGV[5]) end
return 1
"""
# The rest of a turn, once it has been spoken: the agent's lines and the turn's timings. Keyed by
# turn number and instance (ARGV[1]), so a replay after an ambiguous failure adds nothing twice.
FINISH_TURN = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('HGET', KEYS[1], 'finished_turn') == ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'finished_turn', ARGV[1])
local n = tonumber(ARGV[3])
for i = 1, n do redis.call('RPUSH', KEYS[2], ARGV[3 + i]) end
for i = 4 + n, #ARGV do redis.call('RPUSH', KEYS[3], ARGV[i]) end
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ARGV[2]) end
return 1
"""
# A new caller channel gets its session and its lease in one step, before anything else happens
# to it: no other instance's sweeper can take a call that has no record yet for an orphan.
CLAIM_CHANNEL = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[3]) then
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[4])
  return 1
end
return 0
"""


class SessionCorrupt(Exception):
    """A stored record cannot be loaded. ``salvaged`` holds every field that could be read, so
    the call can still be handed to a human with what we know."""

    def __init__(self, session_id: str, problems: list[str], salvaged: dict[str, Any]) -> None:
        self.session_id = session_id
        self.problems = problems
        self.salvaged = salvaged
        super().__init__(f"call record {session_id} is corrupt: " + "; ".join(problems))


class SessionNotFound(KeyError):
    def __str__(self) -> str:
        return f"no call record {self.args[0]!r} (never created, or expired after it ended)"


class CallEvent(BaseModel):
    id: str
    type: str
    at: float
    data: Any = None


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


class SessionStore:
    def __init__(
        self, redis: RedisSettings | str, instance_id: str, settings: SessionSettings | None = None
    ) -> None:
        """``redis``: the app's RedisSettings (one URL, or sentinels), or a bare URL."""
        self.settings = settings or SessionSettings()
        self.instance_id = instance_id
        self.keys = Keys(self.settings.key_prefix)
        self.redis = ResilientRedis(redis, self.settings)
        self.protector = SlotProtector(self.settings)
        self.leases = LeaseManager(self.redis, instance_id, self.settings, self.keys)
        # Calls this instance runs: answers reads while Redis is away, and knows the turn number.
        self._owned: dict[str, CallRecord] = {}
        self._save_turn = self.redis.client.register_script(SAVE_TURN)
        self._claim_channel = self.redis.client.register_script(CLAIM_CHANNEL)
        self._finish_turn = self.redis.client.register_script(FINISH_TURN)

    # ------------------------------------------------------------------ lifecycle

    async def connect(self) -> None:
        """Raises SessionStoreUnavailable (naming the URL) if Redis cannot be reached."""
        await self.redis.connect()

    async def close(self) -> None:
        await self.leases.stop()
        await self.redis.close()

    @property
    def healthy(self) -> bool:
        return self.redis.healthy

    @property
    def pending_writes(self) -> int:
        return self.redis.pending_writes

    # ------------------------------------------------------------------ writes

    async def create(self, record: CallRecord) -> CallRecord:
        """Store a new call owned by this instance and take its lease. Returns the stored form
        (sensitive slots protected)."""
        sid = record.session_id
        record = self._protected(record.model_copy(update={"owner_instance": self.instance_id}))
        fields = record.model_dump(mode="json")
        mapping = {f: _dump(fields[f]) for f in HASH_FIELDS}
        entries = [e.model_dump_json() for e in record.transcript]
        turn_metrics = [_dump(m) for m in record.metrics]
        ttl = self.settings.retention_seconds
        k = self.keys

        def build(p) -> None:  # type: ignore[no-untyped-def]
            p.delete(k.call(sid), k.transcript(sid), k.metrics(sid))
            p.hset(k.call(sid), mapping=mapping)
            if entries:
                p.rpush(k.transcript(sid), *entries)
            if turn_metrics:
                p.rpush(k.metrics(sid), *turn_metrics)
            p.sadd(k.active, sid)
            # The channel index outlives nothing: it expires with the retention even if end() is never called.
            p.set(k.channel(record.channel_id), sid, ex=ttl)
            self._xadd(p, sid, "created", {"channel_id": record.channel_id, "caller": record.caller_number})
            # Every key expires from its creation (each turn pushes the expiry on): a call that ends
            # while no instance drives it cannot stay in Redis forever.
            for key in k.all_for_call(sid):
                p.expire(key, ttl)

        self._owned[sid] = record
        await self.redis.write(build)
        if not await self.leases.acquire(sid):
            if self.healthy:
                log.error("call %s was created but another instance holds its lease", sid)
            else:
                self.leases.claim_while_offline(sid)
        return record.model_copy(deep=True)

    async def save_turn(
        self,
        session_id: str,
        conversation_state: dict[str, Any],
        transcript_entries: list[TranscriptEntry | dict[str, Any]] = (),  # type: ignore[assignment]
        metrics: dict[str, Any] | None = None,
        sensitive_slots: list[str] | None = None,
    ) -> int:
        """Record one dialogue turn; returns its turn number. Small and constant-size per turn.
        ``sensitive_slots``: names the flow marks sensitive, known before this state is written."""
        rec = await self._local(session_id)
        if sensitive_slots:
            rec.sensitive_slots = sorted({*rec.sensitive_slots, *sensitive_slots})
        entries = [
            e if isinstance(e, TranscriptEntry) else TranscriptEntry.model_validate(e)
            for e in transcript_entries
        ]
        state = self.protector.protect_conversation_state(conversation_state, rec.sensitive_slots)
        turn = rec.turn + 1
        args: list[Any] = [turn, _dump(state), self.settings.events_maxlen, now(),
                           self.settings.retention_seconds, len(entries)]  # fmt: skip
        args += [e.model_dump_json() for e in entries]
        if metrics is not None:
            args.append(_dump(metrics))
        keys = [self.keys.call(session_id), self.keys.transcript(session_id), self.keys.metrics(session_id),
                self.keys.events(session_id)]  # fmt: skip

        rec.turn = turn
        rec.conversation_state = state
        rec.transcript.extend(entries)
        if metrics is not None:
            rec.metrics.append(metrics)
        await self.redis.write(lambda p: self._save_turn(keys=keys, args=args, client=p))
        return turn

    async def update(self, session_id: str, event: str | None = "update", **changes: Any) -> CallRecord:
        """Change record fields (status, bridge_id, intent, summary, slots, transfer, ...).
        Raises ValueError naming the field when a name or value is wrong."""
        bad = [n for n in changes if n in NOT_UPDATABLE or n not in CallRecord.model_fields]
        if bad:
            raise ValueError(f"update({session_id}): fields {bad} cannot be set this way")
        rec = await self._local(session_id)
        try:
            new = CallRecord.model_validate({**rec.model_dump(), **changes})
        except ValidationError as e:
            raise ValueError(
                f"update({session_id}): {e.errors()[0]['loc']}: {e.errors()[0]['msg']}"
            ) from None
        new = self._protected(new)
        fields = new.model_dump(mode="json")
        mapping = {n: _dump(fields[n]) for n in changes}
        for n in changes:
            setattr(rec, n, getattr(new, n))

        def build(p) -> None:  # type: ignore[no-untyped-def]
            p.hset(self.keys.call(session_id), mapping=mapping)
            if event:
                self._xadd(p, session_id, event, {n: fields[n] for n in changes if n != "conversation_state"})

        await self.redis.write(build)
        return rec.model_copy(deep=True)

    async def finish_turn(
        self,
        session_id: str,
        transcript_entries: list[TranscriptEntry] = (),  # type: ignore[assignment]
        metrics: dict[str, Any] | None = None,
    ) -> None:
        """What the saved turn added once spoken: the agent's lines and its timings (the turn is
        saved before it is spoken, so a crash meanwhile resumes at it)."""
        rec = await self._local(session_id)
        if not transcript_entries and metrics is None:
            return
        k = self.keys
        # Once per turn and instance: a replayed write is dropped, but an instance that took the
        # call over and spoke the same turn again (its question after the apology) is recorded.
        token = _dump(f"{rec.turn}@{self.instance_id}")  # every record field is JSON
        args: list[Any] = [token, self.settings.retention_seconds, len(transcript_entries)]
        args += [e.model_dump_json() for e in transcript_entries]
        if metrics is not None:
            args.append(_dump(metrics))
            rec.metrics.append(metrics)
        rec.transcript.extend(transcript_entries)
        keys = [k.call(session_id), k.transcript(session_id), k.metrics(session_id)]
        await self.redis.write(lambda p: self._finish_turn(keys=keys, args=args, client=p))

    async def claim_channel(self, channel_id: str, session_id: str) -> bool:
        """Make a brand-new caller channel ours (session index + lease, atomically). False when
        the channel already belongs to a call. Redis away: claimed locally, leased later."""
        k = self.keys
        try:
            won = await self.redis.read(lambda r: self._claim_channel(
                keys=[k.channel(channel_id), k.lease(session_id)],
                args=[session_id, self.instance_id, self.settings.retention_seconds, self.leases.ttl_ms]))  # fmt: skip
        except RedisUnavailable:
            self.leases.claim_while_offline(session_id)
            return True
        if won == 1:
            self.leases.held(session_id)
        return won == 1

    async def record_transfer(
        self, session_id: str, status: str, info: dict[str, Any], **object_ids: str | None
    ) -> CallRecord:
        """Transfer progress: status transferring|transferred|active (failed, back to the bot),
        with the ids a takeover needs to continue it (bridge_id, agent_channel_id, ...)."""
        return await self.update(session_id, event="transfer", status=status, transfer=info, **object_ids)

    async def append_event(self, session_id: str, type: str, data: Any = None) -> None:
        """Add one event (e.g. "error", "dtmf", "barge_in") to the call's stream."""
        await self.redis.write(lambda p: self._xadd(p, session_id, type, data))

    async def end(self, session_id: str, reason: str) -> None:
        """Mark the call ended, release its lease and let everything expire after the retention."""
        rec = self._owned.get(session_id)
        if rec is None:
            rec = await self.get(session_id)
            if rec is None:
                raise SessionNotFound(session_id)
        ended_at = now()
        ttl = self.settings.retention_seconds
        k = self.keys

        def build(p) -> None:  # type: ignore[no-untyped-def]
            p.hset(k.call(session_id), mapping={
                "status": _dump("ended"), "ended_at": _dump(ended_at), "end_reason": _dump(reason)})  # fmt: skip
            p.srem(k.active, session_id)
            self._xadd(p, session_id, "ended", {"reason": reason})
            for key in (*k.all_for_call(session_id), k.channel(rec.channel_id)):
                p.expire(key, ttl)

        self._owned.pop(session_id, None)
        await self.redis.write(build)
        await self.leases.release(session_id)

    # ------------------------------------------------------------------ reads

    async def get(self, session_id: str) -> CallRecord | None:
        """The call record (None if unknown). Raises SessionCorrupt if it cannot be loaded, and
        SessionStoreUnavailable if Redis is away and this instance does not own the call."""
        try:
            raw = await self.redis.read(lambda r: self._fetch(r, session_id))
        except RedisUnavailable:
            local = self._owned.get(session_id)
            if local is None:
                raise SessionStoreUnavailable(
                    f"Redis at {self.redis.url} is unreachable and call {session_id} is not owned by "
                    f"instance {self.instance_id}"
                ) from None
            return local.model_copy(deep=True)
        fields, transcript, turn_metrics, owner, pttl = raw
        if not fields:
            return None
        record = self._decode(session_id, fields, transcript, turn_metrics)
        if owner:
            record.owner_instance = owner.decode()
            record.lease_expires_at = now() + pttl / 1000 if pttl and pttl > 0 else None
        return record

    async def by_channel(self, channel_id: str) -> str | None:
        """Session id of the call whose caller channel this is."""
        for sid, rec in self._owned.items():
            if rec.channel_id == channel_id:
                return sid
        raw = await self.redis.read(lambda r: r.get(self.keys.channel(channel_id)))
        return raw.decode() if raw else None

    async def events(self, session_id: str, count: int | None = None) -> list[CallEvent]:
        """The call's events, oldest first (the last `count` if given)."""
        key = self.keys.events(session_id)
        if count is None:
            rows = await self.redis.read(lambda r: r.xrange(key))
        else:
            rows = list(reversed(await self.redis.read(lambda r: r.xrevrange(key, count=count))))
        out = []
        for event_id, f in rows:
            data = f.get(b"data", b"null")
            try:
                parsed = json.loads(data)
            except ValueError:
                parsed = data.decode(errors="replace")
            out.append(
                CallEvent(id=event_id.decode(), type=f[b"type"].decode(), at=float(f[b"at"]), data=parsed)
            )
        return out

    async def take_over(self, session_id: str) -> CallRecord | None:
        """Take an orphaned call: win its lease, load it, note the new owner. None = lost the race.
        May raise SessionCorrupt (the lease is then ours: hand the call to a human)."""
        if not await self.leases.take(session_id):
            return None
        rec = await self.get(session_id)
        if rec is None:
            await self.leases.release(session_id)
            return None
        previous = rec.owner_instance if rec.owner_instance != self.instance_id else None
        rec.owner_instance = self.instance_id
        self._owned[session_id] = rec
        mapping = {"owner_instance": _dump(self.instance_id)}

        def build(p) -> None:  # type: ignore[no-untyped-def]
            p.hset(self.keys.call(session_id), mapping=mapping)
            self._xadd(p, session_id, "taken_over", {"by": self.instance_id, "from": previous})

        await self.redis.write(build)
        return rec.model_copy(deep=True)

    async def forget_missing(self) -> list[str]:
        """Drop ``calls:active`` members whose record has expired or was deleted (janitor)."""

        async def scan(r) -> list[str]:  # type: ignore[no-untyped-def]
            members = sorted(m.decode() for m in await r.smembers(self.keys.active))
            async with r.pipeline(transaction=False) as p:
                for sid in members:
                    p.exists(self.keys.call(sid))
                present = await p.execute()
            gone = [sid for sid, here in zip(members, present, strict=True) if not here]
            if gone:
                await r.srem(self.keys.active, *gone)
            return gone

        return await self.redis.read(scan)

    def owned_sessions(self) -> list[str]:
        return sorted(self._owned)

    # ------------------------------------------------------------------ internals

    async def _local(self, session_id: str) -> CallRecord:
        rec = self._owned.get(session_id)
        if rec is None:  # e.g. written by a helper task of another instance: load it once
            loaded = await self.get(session_id)
            if loaded is None:
                raise SessionNotFound(session_id)
            self._owned[session_id] = rec = loaded
        return rec

    def _protected(self, record: CallRecord) -> CallRecord:
        extra = record.sensitive_slots
        record.slots = self.protector.protect(record.slots, extra)
        record.conversation_state = self.protector.protect_conversation_state(
            record.conversation_state, extra
        )
        return record

    def _xadd(self, p, session_id: str, type: str, data: Any) -> None:  # type: ignore[no-untyped-def]
        p.xadd(self.keys.events(session_id), {"type": type, "at": repr(now()), "data": _dump(data)},
               maxlen=self.settings.events_maxlen, approximate=True)  # fmt: skip

    async def _fetch(self, r, session_id: str) -> list[Any]:  # type: ignore[no-untyped-def]
        lease = self.keys.lease(session_id)
        async with r.pipeline(transaction=False) as p:
            p.hgetall(self.keys.call(session_id))
            p.lrange(self.keys.transcript(session_id), 0, -1)
            p.lrange(self.keys.metrics(session_id), 0, -1)
            p.get(lease)
            p.pttl(lease)
            return await p.execute()

    def _decode(self, session_id: str, fields: dict[bytes, bytes], transcript: list[bytes],
                turn_metrics: list[bytes]) -> CallRecord:  # fmt: skip
        problems: list[str] = []
        data: dict[str, Any] = {}
        for name_b, raw in fields.items():
            name = name_b.decode(errors="replace")
            try:
                data[name] = json.loads(raw)
            except ValueError:
                problems.append(f"field {name!r} is not valid JSON: {raw[:60]!r}")
        entries = []
        for i, raw in enumerate(transcript):
            try:
                entries.append(TranscriptEntry.model_validate_json(raw))
            except ValidationError:
                problems.append(f"transcript line {i} is unreadable: {raw[:60]!r}")
        per_turn = []
        for i, raw in enumerate(turn_metrics):
            try:
                per_turn.append(json.loads(raw))
            except ValueError:
                problems.append(f"metrics line {i} is not valid JSON: {raw[:60]!r}")
        data = {k: v for k, v in data.items() if k in CallRecord.model_fields}
        data.setdefault("session_id", session_id)
        while True:
            try:
                record = CallRecord.model_validate({**data, "transcript": entries, "metrics": per_turn})
                break
            except ValidationError as e:
                bad = {str(err["loc"][0]) for err in e.errors() if err["loc"]}
                problems += [f"field {'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors()]
                if not bad & data.keys():  # a required field is missing: nothing more to drop
                    record = None
                    break
                data = {k: v for k, v in data.items() if k not in bad}
        if problems:
            prom.CORRUPT_RECORDS.inc()
            salvaged = record.model_dump(mode="json") if record else {**data, "transcript": [
                e.model_dump(mode="json") for e in entries]}  # fmt: skip
            if record is None:
                salvaged["metrics"] = per_turn
            log.error("call record %s is corrupt: %s", session_id, "; ".join(problems))
            raise SessionCorrupt(session_id, problems, salvaged)
        return record
