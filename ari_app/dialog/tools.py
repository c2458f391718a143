"""Governed webhooks: the only I/O the dialogue engine does.

A tool call validates its JSON args against the declared schema *before* sending, signs the
body with HMAC-SHA256 (``X-IVA-Signature: sha256=<hex>``, secret read from the environment
variable the tool names, never from the flow file), and retries timeouts, connection errors,
5xx and non-JSON answers with exponential backoff. It never raises: the engine gets a
``ToolResult`` and takes the tool's fallback path when ``ok`` is False.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
from jsonschema import Draft202012Validator

from ari_app.dialog.flows import Tool

SIGNATURE_HEADER = "X-IVA-Signature"
_ENV_REF = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True)
class ToolResult:
    ok: bool
    data: dict[str, Any]
    error: str = ""
    attempts: int = 0
    elapsed_ms: float = 0.0


class ToolSetupError(Exception):
    pass


def expand_env(url: str) -> str:
    """``${DEMO_BACKEND_URL:-http://127.0.0.1:8765}/orders`` -> the environment's value or the default."""

    def repl(m: re.Match[str]) -> str:
        value = os.environ.get(m.group(1), m.group(2))
        if value is None:
            raise ToolSetupError(f"environment variable {m.group(1)} is not set (used in tool url {url!r})")
        return value

    return _ENV_REF.sub(repl, url)


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


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

    async def call(self, name: str, tool: Tool, args: dict[str, Any]) -> ToolResult:
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
            url = expand_env(tool.url)
            secret = None
            if tool.hmac_secret_env:
                secret = os.environ.get(tool.hmac_secret_env)
                if not secret:
                    raise ToolSetupError(
                        f"environment variable {tool.hmac_secret_env} (HMAC secret) is not set"
                    )
        except ToolSetupError as e:
            return result(False, {}, f"{name}: {e}")

        if tool.method == "GET":
            body = b""
            url = url + ("&" if "?" in url else "?") + urlencode(args) if args else url
            signed = urlencode(args).encode()
        else:
            body = signed = json.dumps(args, separators=(",", ":"), sort_keys=True).encode()
        headers = {"Content-Type": "application/json"}
        if secret:
            headers[SIGNATURE_HEADER] = sign(secret, signed)

        http = await self._http()
        error = ""
        for attempt in range(tool.retries + 1):
            if attempt:
                await asyncio.sleep(tool.backoff * 2 ** (attempt - 1))
            try:
                async with http.request(
                    tool.method, url, data=body or None, headers=headers,
                    timeout=aiohttp.ClientTimeout(total=tool.timeout),
                ) as resp:  # fmt: skip
                    text = await resp.text()
                    if resp.status >= 500:
                        error = f"{name}: HTTP {resp.status}"
                        continue
                    if resp.status >= 400:  # our request is wrong: retrying will not help
                        return result(False, {}, f"{name}: HTTP {resp.status}: {text[:200]}", attempt + 1)
                    try:
                        data = json.loads(text)
                    except ValueError:
                        error = f"{name}: answer is not JSON: {text[:80]!r}"
                        continue
                    if not isinstance(data, dict):
                        error = f"{name}: answer is JSON but not an object"
                        continue
                    return result(True, data, "", attempt + 1)
            except TimeoutError:
                error = f"{name}: no answer within {tool.timeout}s"
            except aiohttp.ClientError as e:
                error = f"{name}: {type(e).__name__}: {e}"
        return result(False, {}, error, tool.retries + 1)
