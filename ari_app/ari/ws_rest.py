"""ari room: REST over the call's own websocket (ARI outbound websockets, Asterisk 22.5+).

Why: a worker serves calls from any Asterisk behind the balancer and must not need an HTTP
route back to it. Each request is sent as ``{"type": "RESTRequest", "request_id": ...}`` and
Asterisk answers on the same socket with a ``RESTResponse`` carrying that id; ``resolve`` (fed
by the connection's reader) completes the waiting request. A request that gets no answer within
the timeout, or is pending when the socket closes, raises AriConnectionError.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Awaitable, Callable
from typing import Any

from ari_app.ari.errors import AriConnectionError
from ari_app.ari.transport import RestReply

SendText = Callable[[str], Awaitable[None]]


class WsRestTransport:
    def __init__(self, send_text: SendText, timeout: float, where: str = "the call's websocket") -> None:
        self.where = where
        self._send_text = send_text
        self._timeout = timeout
        self._ids = itertools.count(1)
        self._pending: dict[str, asyncio.Future[RestReply]] = {}
        self._closed: str | None = None  # why no request can be sent any more

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def send(self, method: str, path: str, params: dict[str, str], body: Any) -> RestReply:
        if self._closed is not None:
            raise AriConnectionError(f"ARI over {self.where}: {self._closed} ({method} {path})")
        rid = str(next(self._ids))
        msg: dict[str, Any] = {"type": "RESTRequest", "request_id": rid, "method": method,
                               "uri": path.lstrip("/")}  # fmt: skip
        if params:
            msg["query_strings"] = [{"name": k, "value": v} for k, v in params.items()]
        if body is not None:
            msg["content_type"] = "application/json"
            msg["message_body"] = json.dumps(body)
        fut: asyncio.Future[RestReply] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        try:
            await self._send_text(json.dumps(msg))
            return await asyncio.wait_for(fut, self._timeout)
        except TimeoutError:
            raise AriConnectionError(
                f"ARI over {self.where} did not answer {method} {path} within {self._timeout:g} s "
                "(ari.request_timeout)"
            ) from None
        except ConnectionError as e:  # the socket went away while sending
            raise AriConnectionError(f"ARI over {self.where}: {e} ({method} {path})") from None
        finally:
            self._pending.pop(rid, None)

    def resolve(self, message: dict[str, Any]) -> bool:
        """A RESTResponse arrived: complete its request. False when nobody waits for it (late)."""
        fut = self._pending.get(str(message.get("request_id", "")))
        if fut is None or fut.done():
            return False
        body = message.get("message_body") or ""
        if not isinstance(body, str):
            body = json.dumps(body)
        fut.set_result(RestReply(int(message.get("status_code", 500)), body))
        return True

    def fail_all(self, reason: str) -> None:
        """The socket closed: no answer will come for what is pending, nor for later requests."""
        self._closed = reason
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(AriConnectionError(f"ARI over {self.where}: {reason}"))

    async def close(self) -> None:
        self.fail_all("closed")
