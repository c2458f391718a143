"""outbound: the do-not-call list — numbers no campaign ever dials.

Why: someone who asked not to be called (on a call, by letter, through a national register)
must never be called again, by any campaign. The list is one Redis set shared by all campaigns
(``<prefix>:dnc``), checked by the dialer after it claims a contact and before it dials, holding
numbers normalised like the contacts' (``contacts.normalise_number``): ``(555) 123-4567`` on the
list stops ``555.123.4567`` in a contact file. The set holds keyed digests of the numbers
(``RecordCipher.digest``), never the numbers: membership is all a dialer needs. A lookup tries
the digest under every configured key (a rotation keeps the list working) and the clear number
a version before digests wrote.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis.asyncio as aioredis

from ari_app.outbound.contacts import normalise_number
from ari_app.outbound.errors import CampaignError
from ari_app.outbound.state import CampaignKeys
from ari_app.session.cipher import RecordCipher

_BATCH = 1000


@dataclass
class DncImport:
    added: int = 0  # new on the list (numbers already there are not counted)
    errors: list[str] = field(default_factory=list)  # one per line that holds no number


class DncList:
    def __init__(self, redis: aioredis.Redis, keys: CampaignKeys, cipher: RecordCipher) -> None:
        cipher.require("the do-not-call list")
        self.redis, self.keys, self.cipher = redis, keys, cipher

    def _forms(self, n: str) -> list[str]:
        """Every form a number may be stored under: digests (current key first), then legacy clear."""
        return [*self.cipher.digests(n), n]

    async def add(self, number: str, reason: str) -> bool:
        """Add a number (ValueError if it is not one); True if it was not on the list yet."""
        n = normalise_number(number)
        if await self._member(n):
            return False
        record = json.dumps({"reason": reason, "at": time.time()})
        pipe = self.redis.pipeline(transaction=True)
        pipe.sadd(self.keys.dnc, self.cipher.digest(n))
        pipe.hsetnx(self.keys.dnc_reasons, self.cipher.digest(n), record)
        added, _ = await pipe.execute()
        return bool(added)

    async def _member(self, n: str) -> bool:
        return any(await self.redis.smismember(self.keys.dnc, self._forms(n)))

    async def contains(self, number: str) -> bool:
        try:
            n = normalise_number(number)
        except ValueError:
            return False  # not a number, so not on the list (and not callable anyway)
        return await self._member(n)

    async def reason(self, number: str) -> str | None:
        for raw in await self.redis.hmget(self.keys.dnc_reasons, self._forms(normalise_number(number))):
            if raw:
                return str(json.loads(raw)["reason"])
        return None

    async def remove(self, number: str) -> bool:
        forms = self._forms(normalise_number(number))
        pipe = self.redis.pipeline(transaction=True)
        pipe.srem(self.keys.dnc, *forms)
        pipe.hdel(self.keys.dnc_reasons, *forms)
        removed, _ = await pipe.execute()
        return bool(removed)

    async def size(self) -> int:
        return int(await self.redis.scard(self.keys.dnc))

    async def import_file(self, path: str | Path, reason: str | None = None) -> DncImport:
        """One number per line (the first comma-separated field; a header line and ``#`` comments
        are skipped). Lines that hold no number are reported, the rest added."""
        path = Path(path)
        try:
            lines = path.read_text(encoding="utf-8-sig").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise CampaignError(
                f"{path}: cannot read the do-not-call file ({getattr(e, 'strerror', e)})"
            ) from None
        out = DncImport()
        numbers: list[str] = []
        for n, line in enumerate(lines, start=1):
            value = line.split(",", 1)[0].strip().strip('"')
            if not value or value.startswith("#"):
                continue
            try:
                numbers.append(normalise_number(value))
            except ValueError as e:
                if n == 1 and not any(c.isdigit() for c in value):
                    continue  # a header ("number")
                out.errors.append(f"{path.name} line {n}: {e}")
        record = json.dumps({"reason": reason or f"imported from {path.name}", "at": time.time()})
        for i in range(0, len(numbers), _BATCH):
            chunk = [self.cipher.digest(n) for n in numbers[i : i + _BATCH]]
            pipe = self.redis.pipeline(transaction=True)
            pipe.sadd(self.keys.dnc, *chunk)
            for digest in chunk:
                pipe.hsetnx(self.keys.dnc_reasons, digest, record)
            out.added += int((await pipe.execute())[0])
        return out
