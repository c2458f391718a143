"""The ``dialog`` section of the settings: where flows live and when to escalate."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ari_app.dialog.policy import PolicySettings


class DialogSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    flows: list[Path] = Field(default_factory=lambda: [Path("flows")])  # files or directories
    policy: PolicySettings = Field(default_factory=PolicySettings)
