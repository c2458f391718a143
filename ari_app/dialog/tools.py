"""Governed webhooks: the only I/O the dialogue engine does.

A tool call validates its JSON args against the declared schema *before* sending, signs the
request (secret read from the environment variable the tool names, never from the flow file),
and retries timeouts, connection errors, 5xx and non-JSON answers with exponential backoff. It
never raises: the engine gets a ``ToolResult`` and takes the tool's fallback path when ``ok`` is
False.

Exactly once. Every call the engine makes carries an ``Idempotency-Key`` derived from the call,
the flow, the step and the arguments (``idempotency_key``): the same on every retry and on the
instance that takes a call over after a crash and hears the same answer again, so a backend that
remembers keys applies a booking or a refund once. A method that is not idempotent (POST, PATCH)
is retried only when it carries a key; GET and PUT are retried as configured. With a key, a
``409`` (the backend still works on the first attempt) is retried too.

Signature scheme v1 (when the tool names ``hmac_secret_env``)::

    X-IVA-Timestamp: <unix seconds>
    X-IVA-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>\\n<METHOD>\\n<path?query>\\n<key>\\n<body>")>

``path?query`` is the request target as sent (percent-encoded, e.g. ``/refunds`` or
``/orders?n=1``), ``key`` the Idempotency-Key or empty, ``body`` the raw bytes (empty for GET).
The timestamp binds the signature to a moment (``verify`` refuses one older or newer than
``window_s``), method, path and key bind it to one request: a signature cannot be replayed later,
against another tool sharing the secret, or with another key. ``verify`` is what backends (and
our demo backend) check it with. Several ``v1=`` values separated by commas are accepted (for a
backend rotating secrets, any one that matches).

Journal: ``call(..., journal=cb)`` awaits ``cb("tool_started", {tool, key})`` just before the
first attempt is sent and ``cb("tool_finished", {tool, key, ok, status, attempts})`` after the
last; a request that is refused before sending (bad arguments, missing secret) writes neither.
A failing journal is logged and never stops the call.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
import structlog
from jsonschema import Draft202012Validator
from yarl import URL

from ari_app.dialog.flows import Tool

SIGNATURE_HEADER = "X-IVA-Signature"
TIMESTAMP_HEADER = "X-IVA-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
SIGNATURE_VERSION = "v1"
NOT_IDEMPOTENT = frozenset({"POST", "PATCH"})
_ENV_REF = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?::-([^}]*))?\}")

ToolJournal = Callable[[str, dict[str, Any]], Awaitable[None]]
log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ToolResult:
    ok: bool
    data: dict[str, Any]
    error: str = ""
    attempts: int = 0
    elapsed_ms: float = 0.0
    status: int | None = None  # the last HTTP status; None when nothing answered


class ToolSetupError(Exception):
    pass


class SignatureInvalid(Exception):
    """A request whose signature does not hold; ``reason`` says why (safe to send back)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def expand_env(url: str) -> str:
    """``${DEMO_BACKEND_URL:-http://127.0.0.1:8765}/orders`` -> the environment's value or the default."""

    def repl(m: re.Match[str]) -> str:
        value = os.environ.get(m.group(1), m.group(2))
        if value is None:
            raise ToolSetupError(f"environment variable {m.group(1)} is not set (used in tool url {url!r})")
        return value

    return _ENV_REF.sub(repl, url)


def canonical_json(value: Any) -> bytes:
    """The one JSON encoding of ``value`` we sign, send and derive keys from."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False, default=str).encode()


def idempotency_key(
    session_id: str, flow: str, step: str | int, tool: str, frame_started: int | None, args: Any
) -> str:
    """The same for the same call, flow run, step and arguments, on any instance.

    ``frame_started`` (the turn the flow's frame began) tells apart two runs of one flow in a
    call (book 9:00, move it to 10:00, then back to 9:00 in a later request: three bookings).
    """
    parts = [session_id, flow, str(step), tool, frame_started, args]
    return hashlib.sha256(canonical_json(parts)).hexdigest()


def signed_message(timestamp: str, method: str, path: str, key: str, body: bytes) -> bytes:
    return f"{timestamp}\n{method.upper()}\n{path}\n{key}\n".encode() + body


def sign(secret: str, timestamp: str, method: str, path: str, key: str, body: bytes) -> str:
    """The ``X-IVA-Signature`` value (``v1=<hex>``) for one request."""
    message = signed_message(timestamp, method, path, key, body)
    return f"{SIGNATURE_VERSION}=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_headers(
    secret: str, method: str, path: str, key: str | None, body: bytes, now: float
) -> dict[str, str]:
    timestamp = str(int(now))
    return {
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(secret, timestamp, method, path, key or "", body),
    }


def _header(headers: Mapping[str, str], name: str) -> str:
    """Case-insensitive, for plain dicts as for aiohttp's headers."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value or ""


def verify(
    secret: str,
    headers: Mapping[str, str],
    method: str,
    path: str,
    body: bytes,
    *,
    now: float,
    window_s: float = 300,
) -> None:
    """Raise ``SignatureInvalid`` unless ``headers`` sign this request within ``window_s`` of ``now``.

    ``path`` is the request target as received, query included (aiohttp: ``request.raw_path``).
    """
    signature, timestamp = _header(headers, SIGNATURE_HEADER), _header(headers, TIMESTAMP_HEADER)
    if not signature:
        raise SignatureInvalid(f"missing {SIGNATURE_HEADER}")
    if not timestamp:
        raise SignatureInvalid(f"missing {TIMESTAMP_HEADER}")
    if not timestamp.isdigit():
        raise SignatureInvalid(f"{TIMESTAMP_HEADER} is not unix seconds")
    if abs(now - int(timestamp)) > window_s:
        raise SignatureInvalid(f"{TIMESTAMP_HEADER} is outside the {window_s:g} s window")
    expected = sign(secret, timestamp, method, path, _header(headers, IDEMPOTENCY_HEADER), body)
    offered = [s.strip() for s in signature.split(",")]
    if not any(s.startswith(f"{SIGNATURE_VERSION}=") for s in offered):
        raise SignatureInvalid(f"no {SIGNATURE_VERSION}= signature")
    if not any(hmac.compare_digest(expected, s) for s in offered):
        raise SignatureInvalid("signature does not match")


def retryable(method: str, key: str | None) -> bool:
    """A request that may be sent again: idempotent by method, or carrying a key."""
    return method not in NOT_IDEMPOTENT or bool(key)


async def _note(journal: ToolJournal | None, event: str, data: dict[str, Any]) -> None:
    if journal is None:
        return
    try:
        await journal(event, data)
    except Exception as e:  # the audit trail must never decide the call
        log.warning("tool.journal_failed", journal_event=event, tool=data.get("tool"), error=repr(e))


@dataclass(frozen=True)
class _Request:
    method: str
    target: URL
    body: bytes
    key: str | None
    secret: str | None

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.key:
            headers[IDEMPOTENCY_HEADER] = self.key
        if self.secret:
            headers |= signed_headers(
                self.secret, self.method, self.target.raw_path_qs, self.key, self.body, time.time()
            )
        return headers


def _prepare(tool: Tool, args: dict[str, Any], key: str | None) -> _Request:
    """The request to send; raises ``ToolSetupError`` when the environment lacks what it names."""
    url = expand_env(tool.url)
    secret = None
    if tool.hmac_secret_env:
        secret = os.environ.get(tool.hmac_secret_env)
        if not secret:
            raise ToolSetupError(f"environment variable {tool.hmac_secret_env} (HMAC secret) is not set")
    body = b""
    if tool.method == "GET":
        url = url + ("&" if "?" in url else "?") + urlencode(args) if args else url
    else:
        body = canonical_json(args)
    return _Request(tool.method, URL(url), body, key, secret)


class ToolClient:
    """One per process; share it between calls (it pools connections)."""

    def __init__(self, session: aiohttp.ClientSession | None = None) -> None:
        self._session = session
        self._own_session = session is None

    async def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()

    async def call(
        self,
        name: str,
        tool: Tool,
        args: dict[str, Any],
        *,
        idempotency_key: str | None = None,
        journal: ToolJournal | None = None,
    ) -> ToolResult:
        started = time.perf_counter()

        def result(ok: bool, data: dict[str, Any], error: str = "", attempts: int = 0) -> ToolResult:
            return ToolResult(ok, data, error, attempts, (time.perf_counter() - started) * 1000)

        problems = sorted(
            Draft202012Validator(tool.args_schema).iter_errors(args), key=lambda e: list(e.path)
        )
        if problems:
            where = "/".join(map(str, problems[0].path)) or "(args)"
            return result(
                False, {}, f"{name}: arguments rejected before sending: {where}: {problems[0].message}"
            )
        try:
            request = _prepare(tool, args, idempotency_key)
        except ToolSetupError as e:
            return result(False, {}, f"{name}: {e}")

        await _note(journal, "tool_started", {"tool": name, "key": idempotency_key})
        res = await self._send(name, tool, request, started)
        await _note(journal, "tool_finished", {"tool": name, "key": idempotency_key, "ok": res.ok,
                                               "status": res.status, "attempts": res.attempts})  # fmt: skip
        return res

    async def _send(self, name: str, tool: Tool, request: _Request, started: float) -> ToolResult:
        """The attempts: the first, and retries while the answer allows another and one is left."""
        http = await self._http()
        tries = tool.retries + 1 if retryable(request.method, request.key) else 1
        error, status = "", None
        for attempt in range(tries):
            if attempt:
                await asyncio.sleep(tool.backoff * 2 ** (attempt - 1))
            try:
                async with http.request(
                    request.method, request.target, data=request.body or None, headers=request.headers(),
                    timeout=aiohttp.ClientTimeout(total=tool.timeout),
                ) as resp:  # fmt: skip
                    status, text = resp.status, await resp.text()
            except TimeoutError:
                error, status = f"{name}: no answer within {tool.timeout}s", None
                continue
            except aiohttp.ClientError as e:
                error, status = f"{name}: {type(e).__name__}: {e}", None
                continue
            data, error, final = _read_answer(name, status, text, request.key)
            if data is not None or final:
                elapsed = (time.perf_counter() - started) * 1000
                return ToolResult(data is not None, data or {}, error, attempt + 1, elapsed, status)
        return ToolResult(False, {}, error, tries, (time.perf_counter() - started) * 1000, status)


def _read_answer(
    name: str, status: int, text: str, key: str | None
) -> tuple[dict[str, Any] | None, str, bool]:
    """(data or None, error, final): ``final`` when retrying cannot help (our request is wrong)."""
    if status >= 500:
        return None, f"{name}: HTTP {status}", False
    if status == 409 and key:  # the backend is still working on this key's first attempt
        return None, f"{name}: HTTP 409 (key in progress)", False
    if status >= 400:
        return None, f"{name}: HTTP {status}: {text[:200]}", True
    try:
        data = json.loads(text)
    except ValueError:
        return None, f"{name}: answer is not JSON: {text[:80]!r}", False
    if not isinstance(data, dict):
        return None, f"{name}: answer is JSON but not an object", False
    return data, "", False
