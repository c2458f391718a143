"""structlog set-up: one line per event, secrets and card numbers never written.

Redaction happens here, at the last step before output, so no call site can forget it. The
standard library's loggers (asyncio, aiohttp, redis, our own modules that use ``logging``) go
through the same processors: there is one pipeline, not one per logging API.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog

from ari_app.dialog.redact import redact_text

_SECRET_KEYS = re.compile(r"pass(word)?|secret|token|api_key|authorization|pin|cvv", re.I)
_URL_CREDENTIALS = re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^/\s@]*@", re.I)


def redact_url(text: str) -> str:
    """``redis://user:pw@host:6390/0`` -> ``redis://***@host:6390/0`` (wherever a URL is printed)."""
    return _URL_CREDENTIALS.sub(r"\1***@", text)


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(redact_url(value))
    if isinstance(value, dict):
        return {k: ("***" if _SECRET_KEYS.search(str(k)) else _redact(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redact(v) for v in value)
    return value


def redact_processor(_logger: Any, _name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    return _redact(event_dict)


def configure_logging(level: str = "info", json: bool = False) -> None:
    lvl = getattr(logging, level.upper(), logging.INFO)
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="%H:%M:%S.%f", utc=False),
    ]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                redact_processor,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(lvl)
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            redact_processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
