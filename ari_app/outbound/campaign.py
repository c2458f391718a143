"""outbound: the campaign file — what to call with, when, how fast and how often.

Why: a campaign is configuration an admin writes (YAML or JSON), so like the settings it is
checked when it loads and every problem is one line naming the file and the key
(``campaign.yaml: pacing.max_concurrent: must be >= 1``), never a traceback. Whether ``flow``
names a loaded flow is checked by the caller, who has the flows (``check_flow``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from ari_app.outbound.contacts import check_timezone
from ari_app.outbound.errors import CampaignError
from ari_app.outbound.outcomes import Outcome
from ari_app.outbound.window import Window

# /n: the Local pair stays (never optimised away), so the channel in our app is the call for its
# whole life, also after a takeover rebuilds its bridge.
DEFAULT_ENDPOINT = "Local/{number}@ari-app-outbound/n"
# "Clinic" <5551000>, Clinic <5551000>, <5551000> or 5551000
_CALLER_ID = re.compile(r'^\s*(?:(?:"[^"]*"|[^"<>]*?)\s*<\+?[0-9]+>|\+?[0-9]+)\s*$')


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Pacing(_Section):
    max_concurrent: int = Field(default=2, ge=1, le=1000)
    calls_per_second: float = Field(default=1.0, gt=0, le=100)
    # Fraction of capacity.max_calls kept free for inbound callers.
    inbound_reserve: float = Field(default=0.25, ge=0, le=0.9)


class Backoff(_Section):
    """Seconds before the next attempt after each retryable outcome."""

    busy: float = Field(default=300.0, ge=0)
    no_answer: float = Field(default=900.0, ge=0)
    congestion: float = Field(default=600.0, ge=0)

    def after(self, outcome: Outcome) -> float:
        if outcome is Outcome.BUSY:
            return self.busy
        return self.no_answer if outcome is Outcome.NO_ANSWER else self.congestion


class Retries(_Section):
    max_attempts: int = Field(default=3, ge=1, le=20)
    backoff_s: Backoff = Backoff()


class ResultsWebhook(_Section):
    url: str
    secret_env: str = Field(pattern=r"^[A-Z_][A-Z0-9_]*$")  # HMAC secret, read from this variable

    @field_validator("url")
    @classmethod
    def _http(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v


class CampaignSpec(_Section):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    flow: str = Field(min_length=1)
    contacts: Path  # relative to the campaign file; load_campaign makes it absolute
    caller_id: str
    endpoint: str = DEFAULT_ENDPOINT
    timezone: str  # for contacts that name none
    window: Window = Window()
    pacing: Pacing = Pacing()
    retries: Retries = Retries()
    ring_timeout_s: float = Field(default=30.0, ge=5, le=120)
    voicemail: str | None = Field(default=None, min_length=1)  # left on a machine; None: hang up
    # Who tells a person from a machine: our detector (agent), Asterisk's AMD() or nobody (off).
    amd: Literal["agent", "asterisk", "off"] = "agent"
    results_webhook: ResultsWebhook | None = None
    # This many trunk failures in a row (rejected, failed, congestion) pause the campaign; 0 never.
    pause_on_failures: int = Field(default=5, ge=0)

    _source: str = PrivateAttr(default="campaign")

    @field_validator("caller_id")
    @classmethod
    def _caller_id(cls, v: str) -> str:
        if not _CALLER_ID.match(v):
            raise ValueError('must look like "Clinic" <5551000> or 5551000')
        return v.strip()

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, v: str) -> str:
        if "{number}" not in v:
            raise ValueError("must contain {number}, e.g. PJSIP/{number}@trunk")
        try:
            v.format(number="1")
        except (KeyError, IndexError, ValueError):
            raise ValueError("may contain no other {placeholder} than {number}") from None
        return v

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, v: str) -> str:
        return check_timezone(v)

    @property
    def source(self) -> str:
        """The file this campaign was read from (for messages)."""
        return self._source

    def dial_string(self, number: str) -> str:
        return self.endpoint.format(number=number)

    def check_flow(self, known_flow_ids: Iterable[str]) -> None:
        known = sorted(known_flow_ids)
        if self.flow not in known:
            raise CampaignError(f"{self._source}: flow: {self.flow!r} is not a loaded flow "
                                f"(loaded: {', '.join(known) or 'none'})")  # fmt: skip


def _message(e: dict[str, Any]) -> str:
    ctx = e.get("ctx") or {}
    by_type = {
        "greater_than_equal": lambda: f"must be >= {ctx.get('ge')}",
        "greater_than": lambda: f"must be > {ctx.get('gt')}",
        "less_than_equal": lambda: f"must be <= {ctx.get('le')}",
        "less_than": lambda: f"must be < {ctx.get('lt')}",
        "missing": lambda: "is required",
        "extra_forbidden": lambda: "unknown key (check the spelling)",
        "string_pattern_mismatch": lambda: f"{e.get('input')!r} must match {ctx.get('pattern')}",
    }
    make = by_type.get(e["type"])
    return make() if make else e["msg"].removeprefix("Value error, ")


def describe(err: ValidationError, source: str) -> str:
    """One line per problem: ``campaign.yaml: pacing.max_concurrent: must be >= 1``."""
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        lines.append(f"{source}: {key}: {_message(dict(e))}")
    return "\n".join(lines)


def load_campaign(path: str | Path) -> CampaignSpec:
    """Read and check a campaign file (.yaml, .yml or .json); raise CampaignError on any problem."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise CampaignError(
            f"{source}: cannot read the campaign file ({getattr(e, 'strerror', e)})"
        ) from None
    suffix = path.suffix.lower()
    try:
        if suffix in (".yaml", ".yml"):
            raw = yaml.safe_load(text)
        elif suffix == ".json":
            raw = json.loads(text)
        else:
            raise CampaignError(f"{source}: unknown campaign file type (use .yaml, .yml or .json)")
    except (yaml.YAMLError, ValueError) as e:
        raise CampaignError(f"{source}: not valid {suffix.lstrip('.').upper()}: {e}") from None
    if not isinstance(raw, dict):
        raise CampaignError(f"{source}: must hold a mapping of keys, not {type(raw).__name__}")
    try:
        spec = CampaignSpec.model_validate(raw)
    except ValidationError as e:
        raise CampaignError(describe(e, source)) from None
    if not spec.contacts.is_absolute():
        spec = spec.model_copy(update={"contacts": path.parent / spec.contacts})
    spec._source = source
    return spec
