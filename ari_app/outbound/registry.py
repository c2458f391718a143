"""outbound: the campaigns started on this site, as Redis holds them — the one place the CLI,
the HTTP API and the service's runner meet.

Why in Redis: the command that starts a campaign is not the process that dials (the active
agent instance is: its ARI app gets the answered calls), and a restart of either must not lose
or repeat anything. ``start`` validates the campaign file and its contacts, loads them into the
campaign state (contacts already attempted keep their state) and stores the spec; the runner
dials every campaign whose status is ``running``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis.asyncio as aioredis

from ari_app.dialog.templates import TemplateError, render
from ari_app.outbound.campaign import CampaignSpec, load_campaign
from ari_app.outbound.contacts import Contact, ContactList, load_contacts
from ari_app.outbound.errors import CampaignError
from ari_app.outbound.records import CampaignStatus
from ari_app.outbound.state import CampaignKeys, CampaignState
from ari_app.session.cipher import CipherUnavailable, RecordCipher


@dataclass
class Started:
    spec: CampaignSpec
    added: int
    updated: int
    errors: list[str] = field(default_factory=list)  # bad contact rows (skipped), one line each


@dataclass
class Prepared:
    """A campaign file and its contacts, checked (no Redis needed): what ``start`` loads."""

    spec: CampaignSpec
    contacts: list[Contact]
    errors: list[str]


def prepare(path: str | Path, known_flows: dict[str, list[str]]) -> Prepared:
    """``known_flows``: flow id -> the inputs it needs (every contact must carry them)."""
    spec = load_campaign(path)
    spec.check_flow(known_flows)
    contacts = load_contacts(spec.contacts, spec.timezone)
    good, errors = _with_inputs(contacts, known_flows[spec.flow], spec.contacts.name, spec.voicemail)
    if not good.contacts:
        raise CampaignError(
            f"{spec.contacts}: no contact can be called" + "".join(f"\n  {e}" for e in errors)
        )
    return Prepared(spec, good.contacts, errors)


class Campaigns:
    def __init__(self, redis: aioredis.Redis, prefix: str, cipher: RecordCipher) -> None:
        self.redis = redis
        self.keys = CampaignKeys(prefix)
        self.cipher = cipher  # contacts are caller data: stored sealed (state.py)

    async def start(
        self, path: str | Path | Prepared, known_flows: dict[str, list[str]] | None = None
    ) -> Started:
        """Load the campaign (a file, checked against ``known_flows``, or one ``prepare`` checked
        already) into Redis."""
        ready = path if isinstance(path, Prepared) else prepare(path, known_flows or {})
        spec = ready.spec
        state = self._state(spec)
        added, updated = await state.load(ready.contacts)
        await self.redis.set(self.keys.spec(spec.name), spec.model_dump_json())
        await self.redis.sadd(self.keys.campaigns, spec.name)
        if added:
            await state.reopen()  # a finished campaign started again with new contacts
        return Started(spec, added, updated, ready.errors)

    async def names(self) -> list[str]:
        return sorted(n.decode() for n in await self.redis.smembers(self.keys.campaigns))

    async def spec(self, name: str) -> CampaignSpec:
        raw = await self.redis.get(self.keys.spec(name))
        if raw is None:
            raise CampaignError(
                f"no campaign named {name!r} (started: {', '.join(await self.names()) or 'none'})"
            )
        return CampaignSpec.model_validate(json.loads(raw))

    async def state(self, name: str) -> CampaignState:
        return self._state(await self.spec(name))

    def _state(self, spec: CampaignSpec) -> CampaignState:
        try:
            return CampaignState(self.redis, spec, self.keys, self.cipher)
        except CipherUnavailable as e:
            raise CampaignError(str(e)) from None

    async def status(self, name: str) -> CampaignStatus:
        return await (await self.state(name)).status()

    async def control(self, name: str, action: str) -> CampaignStatus:
        """pause | resume | cancel; an action that does not apply is an error naming the status."""
        state = await self.state(name)
        before = await state.campaign_status()
        done = {
            "pause": lambda: state.pause(f"paused by an operator at {time.strftime('%H:%M:%S')}"),
            "resume": state.resume,
            "cancel": lambda: state.cancel("cancelled by an operator"),
        }
        if action not in done:
            raise CampaignError(f"unknown action {action!r} (pause, resume or cancel)")
        if not await done[action]():
            raise CampaignError(f"campaign {name!r} is {before}: cannot {action} it")
        return await state.status()


def _with_inputs(contacts: ContactList, inputs: list[str], source: str,
                 voicemail: str | None) -> tuple[ContactList, list[str]]:  # fmt: skip
    """Contacts that lack a value the flow (or the voicemail message) needs are reported like
    any bad row and not called."""
    good, errors = [], list(contacts.errors)
    for c in contacts.contacts:
        known = {**c.data, **({"name": c.name} if c.name else {})}
        missing = [i for i in inputs if not str(known.get(i, "")).strip()]
        if missing:
            errors.append(
                f"{source} contact {c.id!r}, field {missing[0]!r}: the flow needs it and it is empty"
            )
            continue
        try:
            if voicemail:
                render(voicemail, known)
        except TemplateError as e:
            errors.append(f"{source} contact {c.id!r}: the voicemail message cannot be filled in: {e}")
            continue
        good.append(c)
    return ContactList(good, errors), errors
