"""Errors raised by the speech engines."""

from __future__ import annotations

import importlib
from types import ModuleType


class SpeechEngineError(RuntimeError):
    """A speech engine could not load or run; the message names the engine and what to install or fix."""


def import_engine_module(kind: str, engine: str, module: str, package: str) -> ModuleType:
    """Import ``module`` for an engine, or raise SpeechEngineError naming the package to install."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise SpeechEngineError(f"{kind} engine {engine!r} needs package {package}: {e}") from None
