"""REST half of the ARI client: one method per operation the call path needs.

Why our own: ari-client raises bare Exceptions; here every failure is an AriError subclass
with the HTTP status and Asterisk's message, so "404 because the caller just hung up" can be
handled precisely.
"""

from __future__ import annotations

import asyncio
import base64
import json
import json as json_mod
import time
from typing import Any

import aiohttp

from ari_app.ari.errors import AriConnectionError, AriNotFound, error_for
from ari_app.ari.models import Bridge, Channel, Playback
from ari_app.ari.transport import HttpTransport, RestTransport
from ari_app.config import AriSettings


class AriClient:
    """``transport`` carries the requests (HTTP to ``settings.url`` by default; a call's websocket
    in worker mode, ws_rest.py); ``app`` is the Stasis app our new channels join (a worker's
    per-call app name, e.g. ``ari-app-ws:PJSIP/caller-0000003b``)."""

    def __init__(
        self,
        settings: AriSettings,
        session: aiohttp.ClientSession | None = None,
        *,
        transport: RestTransport | None = None,
        app: str | None = None,
    ) -> None:
        self.settings = settings
        self.app = app or settings.app
        # A per-call app (outbound websocket) gets every event of its channels already, and
        # Asterisk answers 404 to /applications/<per-call app>/subscription (measured, 22.10.1).
        self.per_call_app = False
        self.transport: RestTransport = transport or HttpTransport(
            settings.url, auth_headers(settings), settings.request_timeout, session
        )

    @property
    def http(self) -> aiohttp.ClientSession:
        if not isinstance(self.transport, HttpTransport):
            raise AttributeError("this ARI client sends its requests over a websocket, not HTTP")
        return self.transport.http

    async def close(self) -> None:
        await self.transport.close()

    async def __aenter__(self) -> AriClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def request(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, json: Any = None
    ) -> Any:
        clean = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        reply = await self.transport.send(method, path, clean, json)
        if reply.status == 401:
            raise AriConnectionError(
                f"ARI at {self.transport.where} refused user {self.settings.username!r}: "
                "check ari.username / ari.password"
            )
        if reply.status >= 400:
            raise error_for(reply.status, _message(reply.text), method, path)
        if not reply.text:
            return None
        try:
            return json_mod.loads(reply.text)
        except ValueError:
            raise error_for(502, f"not JSON: {reply.text[:200]!r}", method, path) from None

    # ---------------------------------------------------------------- asterisk
    async def info(self) -> dict[str, Any]:
        return await self.request("GET", "/asterisk/info")

    async def subscribe(self, *sources: str) -> None:
        """Subscribe our app to event sources, e.g. ``channel:<id>``, ``bridge:<id>``.

        Needed after the events websocket reconnects: channels stay in Stasis, but the new
        connection only receives events for what it subscribes to again.
        """
        if sources and not self.per_call_app:
            await self.request(
                "POST", f"/applications/{self.app}/subscription", params={"eventSource": ",".join(sources)}
            )

    # ---------------------------------------------------------------- channels
    async def list_channels(self) -> list[Channel]:
        return [Channel.model_validate(c) for c in await self.request("GET", "/channels")]

    async def get_channel(self, channel_id: str) -> Channel:
        return Channel.model_validate(await self.request("GET", f"/channels/{channel_id}"))

    async def answer(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{channel_id}/answer")

    async def hangup(self, channel_id: str, reason: str = "normal", *, missing_ok: bool = True) -> bool:
        """Hang up a channel. Returns False when it was already gone (never raises for that)."""
        try:
            await self.request("DELETE", f"/channels/{channel_id}", params={"reason": reason})
            return True
        except AriNotFound:
            if not missing_ok:
                raise
            return False

    async def external_media(
        self,
        external_host: str,
        *,
        format: str = "ulaw",
        channel_id: str | None = None,
        encapsulation: str = "rtp",
        transport: str = "udp",
        direction: str = "both",
        variables: dict[str, str] | None = None,
    ) -> Channel:
        body = {"variables": variables} if variables else None
        data = await self.request(
            "POST",
            "/channels/externalMedia",
            params={
                "app": self.app,
                "external_host": external_host,
                "format": format,
                "channelId": channel_id,
                "encapsulation": encapsulation,
                "transport": transport,
                "direction": direction,
            },
            json=body,
        )
        return Channel.model_validate(data)

    async def originate(
        self,
        endpoint: str,
        *,
        channel_id: str | None = None,
        app_args: str | None = None,
        caller_id: str | None = None,
        timeout: int = 30,
        variables: dict[str, str] | None = None,
        originator: str | None = None,
        context: str | None = None,
        extension: str | None = None,
        formats: str | None = None,
    ) -> Channel:
        """Originate into our app (default) or into dialplan (context + extension). ``formats``
        (e.g. "ulaw") fixes the codecs of a channel with no originator to take them from."""
        params: dict[str, Any] = {
            "endpoint": endpoint,
            "channelId": channel_id,
            "callerId": caller_id,
            "timeout": timeout,
            "originator": originator,
            "formats": formats,
        }
        if context:
            params.update(context=context, extension=extension, priority=1)
        else:
            params.update(app=self.app, appArgs=app_args)
        data = await self.request(
            "POST", "/channels", params=params, json={"variables": variables} if variables else None
        )
        return Channel.model_validate(data)

    async def get_variable(self, channel_id: str, name: str) -> str | None:
        try:
            data = await self.request("GET", f"/channels/{channel_id}/variable", params={"variable": name})
        except AriNotFound:
            return None
        return (data or {}).get("value")

    async def set_variable(self, channel_id: str, name: str, value: str) -> None:
        await self.request(
            "POST", f"/channels/{channel_id}/variable", params={"variable": name, "value": value}
        )

    async def continue_in_dialplan(
        self,
        channel_id: str,
        context: str | None = None,
        extension: str | None = None,
        priority: int | None = None,
    ) -> None:
        await self.request(
            "POST",
            f"/channels/{channel_id}/continue",
            params={"context": context, "extension": extension, "priority": priority},
        )

    async def redirect(self, channel_id: str, endpoint: str) -> None:
        await self.request("POST", f"/channels/{channel_id}/redirect", params={"endpoint": endpoint})

    async def snoop(
        self, channel_id: str, *, spy: str = "in", whisper: str = "none", snoop_id: str | None = None
    ) -> Channel:
        data = await self.request(
            "POST",
            f"/channels/{channel_id}/snoop",
            params={"app": self.app, "spy": spy, "whisper": whisper, "snoopId": snoop_id},
        )
        return Channel.model_validate(data)

    async def ring(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{channel_id}/ring")

    async def start_moh(self, channel_id: str, moh_class: str = "default") -> None:
        await self.request("POST", f"/channels/{channel_id}/moh", params={"mohClass": moh_class})

    async def stop_moh(self, channel_id: str) -> None:
        await self.request("DELETE", f"/channels/{channel_id}/moh")

    async def play(self, channel_id: str, media: str, playback_id: str | None = None) -> Playback:
        """Asterisk file playback (sound:..., tone:...). TTS goes through our RTP path instead."""
        data = await self.request(
            "POST", f"/channels/{channel_id}/play", params={"media": media, "playbackId": playback_id}
        )
        return Playback.model_validate(data)

    async def play_to_end(self, channel_id: str, media: str, max_s: float) -> None:
        """Play and return when the playback has finished (it is then gone from /playbacks),
        or after ``max_s``."""
        playback = await self.play(channel_id, media)
        deadline = time.monotonic() + max_s
        while time.monotonic() < deadline:
            await asyncio.sleep(0.25)
            try:
                await self.request("GET", f"/playbacks/{playback.id}")
            except AriNotFound:
                return

    async def stop_playback(self, playback_id: str) -> None:
        try:
            await self.request("DELETE", f"/playbacks/{playback_id}")
        except AriNotFound:
            pass

    # ---------------------------------------------------------------- bridges
    async def create_bridge(
        self, bridge_id: str | None = None, *, type: str = "mixing", name: str | None = None
    ) -> Bridge:
        data = await self.request(
            "POST", "/bridges", params={"type": type, "bridgeId": bridge_id, "name": name}
        )
        return Bridge.model_validate(data)

    async def list_bridges(self) -> list[Bridge]:
        return [Bridge.model_validate(b) for b in await self.request("GET", "/bridges")]

    async def add_to_bridge(self, bridge_id: str, *channel_ids: str, role: str | None = None) -> None:
        await self.request(
            "POST",
            f"/bridges/{bridge_id}/addChannel",
            params={"channel": ",".join(channel_ids), "role": role},
        )

    async def remove_from_bridge(self, bridge_id: str, channel_id: str) -> None:
        try:
            await self.request("POST", f"/bridges/{bridge_id}/removeChannel", params={"channel": channel_id})
        except AriNotFound:
            pass

    async def destroy_bridge(self, bridge_id: str) -> bool:
        try:
            await self.request("DELETE", f"/bridges/{bridge_id}")
            return True
        except AriNotFound:
            return False

    async def bridge_moh(self, bridge_id: str, moh_class: str = "default") -> None:
        await self.request("POST", f"/bridges/{bridge_id}/moh", params={"mohClass": moh_class})

    async def bridge_play(self, bridge_id: str, media: str, playback_id: str | None = None) -> Playback:
        data = await self.request(
            "POST", f"/bridges/{bridge_id}/play", params={"media": media, "playbackId": playback_id}
        )
        return Playback.model_validate(data)


def auth_headers(settings: AriSettings) -> dict[str, str]:
    token = base64.b64encode(f"{settings.username}:{settings.password.get_secret_value()}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def _param(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _message(text: str) -> str:
    try:
        return str(json.loads(text).get("message", text))
    except (ValueError, AttributeError):
        return text.strip() or "(no message)"
