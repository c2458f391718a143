"""Settings of the agent-facing web server (context endpoint, agent page, health, metrics)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class WebSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8089, ge=1, le=65535)
    # Shared secret for /api/context and /agent (Bearer header or ?token=). Unset = those
    # routes answer 503 "not configured" instead of being open.
    token: SecretStr | None = None
    # How often the agent page refreshes the transcript while the call goes on (seconds).
    page_refresh: float = Field(default=2.0, ge=0.5)
