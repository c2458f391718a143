"""Typed views of the ARI resources and events we use. Unknown fields are kept (extra="allow")
so newer Asterisk versions never break parsing."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class CallerId(_Model):
    name: str = ""
    number: str = ""


class DialplanCep(_Model):
    context: str = ""
    exten: str = ""
    priority: int = 0
    app_name: str = ""
    app_data: str = ""


class Channel(_Model):
    id: str
    name: str = ""
    state: str = ""
    caller: CallerId = CallerId()
    connected: CallerId = CallerId()
    dialplan: DialplanCep = DialplanCep()
    channelvars: dict[str, Any] | None = None
    creationtime: str = ""

    def in_app(self, app: str) -> bool:
        """True when the channel sits in our Stasis application."""
        return self.dialplan.app_name == "Stasis" and self.dialplan.app_data.split(",")[0] == app


class Bridge(_Model):
    id: str
    technology: str = ""
    bridge_type: str = ""
    channels: list[str] = Field(default_factory=list)
    name: str = ""


class Playback(_Model):
    id: str
    media_uri: str = ""
    target_uri: str = ""
    state: str = ""


class Event(_Model):
    """Any ARI event. Typed accessors for the fields the call path needs."""

    type: str
    application: str = ""
    timestamp: str = ""
    channel: Channel | None = None
    peer: Channel | None = None
    bridge: Bridge | None = None
    playback: Playback | None = None
    args: list[str] = Field(default_factory=list)
    digit: str | None = None
    duration_ms: int | None = None
    cause: int | None = None
    cause_txt: str | None = None
    variable: str | None = None
    value: str | None = None
    dialstatus: str | None = None

    @property
    def channel_ids(self) -> list[str]:
        """Every channel this event concerns (used to route it to the right call)."""
        ids = []
        for ch in (self.channel, self.peer):
            if ch is not None:
                ids.append(ch.id)
        return ids
