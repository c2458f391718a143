"""Embedded understanding: intent classification + spoken-form entity extraction.

Public entry point: ``build_understanding(settings) -> Understanding`` with ``.fit``,
``.parse``, ``.extract`` and ``.classify_multi``. Heavy modules (onnxruntime, sklearn) load
on first use so that importing the settings model (done by ``ari_app.config``) stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ari_app.dialog.nlu.types import Entity, EntityExtractor, IntentClassifier, IntentScore, Parse

if TYPE_CHECKING:
    from ari_app.dialog.nlu.understanding import Understanding, build_understanding

__all__ = [
    "Entity",
    "EntityExtractor",
    "IntentClassifier",
    "IntentScore",
    "Parse",
    "Understanding",
    "build_understanding",
]


def __getattr__(name: str) -> Any:
    if name in ("Understanding", "build_understanding"):
        from ari_app.dialog.nlu import understanding

        return getattr(understanding, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
