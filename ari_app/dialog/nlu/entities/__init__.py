"""Slot-directed entity extraction from spoken (ASR) text."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ari_app.dialog.nlu.entities.choices import extract_choice
from ari_app.dialog.nlu.entities.dates import extract_date_time
from ari_app.dialog.nlu.entities.names import extract_name, spelled_letters
from ari_app.dialog.nlu.entities.numbers import extract_amount, extract_digits, extract_number
from ari_app.dialog.nlu.entities.yes_no import extract_yes_no
from ari_app.dialog.nlu.types import Entity

# "date_of_birth" is a date slot with a past-date, spoken-year reading; it yields type "date".
SLOT_TYPES = (
    "date", "time", "datetime", "date_of_birth", "digits", "amount", "yes_no", "name",
    "choice", "number",
)  # fmt: skip

__all__ = ["SLOT_TYPES", "SpokenEntityExtractor", "spelled_letters"]


class SpokenEntityExtractor:
    """Implements the ``EntityExtractor`` protocol over the per-type extractors."""

    def extract(
        self,
        text: str,
        entity_type: str,
        *,
        choices: Sequence[str] | None = None,
        now: datetime | None = None,
    ) -> Entity | None:
        if not isinstance(text, str):
            raise ValueError(f"extract(): text must be a string, got {type(text).__name__}")
        if entity_type not in SLOT_TYPES:
            raise ValueError(
                f"extract(): unknown entity type {entity_type!r}; expected one of {', '.join(SLOT_TYPES)}"
            )
        if not text.strip():
            return None
        if entity_type in ("date", "time", "datetime", "date_of_birth"):
            return extract_date_time(text, entity_type, now)
        if entity_type == "choice":
            if isinstance(choices, str) or not choices:
                raise ValueError("extract(..., 'choice') needs choices=[...] (the options offered)")
            return extract_choice(text, list(choices))
        return {
            "digits": extract_digits,
            "amount": extract_amount,
            "yes_no": extract_yes_no,
            "name": extract_name,
            "number": extract_number,
        }[entity_type](text)
