"""The ``dialog`` section of the settings: where flows live, when to escalate, and the optional LLM."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from ari_app.dialog.policy import PolicySettings


class LlmSettings(BaseModel):
    """An optional OpenAI-compatible chat endpoint (llama.cpp server, vLLM, Ollama, ...) that may
    propose commands when the classifier finds nothing. Off while ``base_url`` is unset."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = None  # e.g. http://127.0.0.1:8080/v1
    model: str = "default"  # the name the server knows the model by
    api_key: SecretStr = SecretStr("")
    # The engine stops waiting after this many seconds and answers as if there were no LLM.
    timeout: float = Field(default=1.5, gt=0, le=30)
    max_tokens: int = Field(default=200, ge=16, le=4096)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https:// (e.g. http://127.0.0.1:8080/v1)")
        return v.rstrip("/")

    @property
    def enabled(self) -> bool:
        return self.base_url is not None


class DialogSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    flows: list[Path] = Field(default_factory=lambda: [Path("flows")])  # files or directories
    policy: PolicySettings = Field(default_factory=PolicySettings)
    llm: LlmSettings = Field(default_factory=LlmSettings)
