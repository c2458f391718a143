"""Settings of the agent-facing web server (context endpoint, agent page, health, metrics)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class WebSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8089, ge=1, le=65535)
    # Secret for /api/context (Authorization: Bearer <token>, for back-office systems) and the
    # key that signs the per-call agent-page links (/agent/<session>?link=..., X-IVA-Link on a
    # transfer). Unset = those routes answer 503 "not configured" instead of being open.
    token: SecretStr | None = None
    # How long a signed agent-page link stays valid (seconds): about a shift.
    link_ttl_s: int = Field(default=8 * 3600, ge=60, le=7 * 24 * 3600)
    # /metrics requires this bearer token when set (always set it if host is not loopback).
    metrics_token: SecretStr | None = None
    # How often the agent page refreshes the transcript while the call goes on (seconds).
    page_refresh: float = Field(default=2.0, ge=0.5)
