"""``Understanding``: intents + entities for one application, fit once with its examples."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from ari_app import stage_cpu
from ari_app.dialog.nlu.classifier import HybridIntentClassifier, build_classifier
from ari_app.dialog.nlu.entities import SpokenEntityExtractor
from ari_app.dialog.nlu.entities.dates import extract_date_time
from ari_app.dialog.nlu.entities.numbers import extract_amount, extract_digits
from ari_app.dialog.nlu.entities.yes_no import extract_yes_no
from ari_app.dialog.nlu.settings import NluSettings
from ari_app.dialog.nlu.types import Entity, IntentScore, Parse

_MONEY_CUE = re.compile(r"\$|\b(?:dollars?|bucks?|cents?)\b", re.IGNORECASE)


class Understanding:
    def __init__(self, classifier: HybridIntentClassifier, settings: NluSettings) -> None:
        self.classifier = classifier
        self.settings = settings
        self.extractor = SpokenEntityExtractor()

    @property
    def uses_embeddings(self) -> bool:
        """False when running on the TF-IDF-only fallback."""
        return self.classifier.embedder is not None

    def fit(self, examples: dict[str, list[str]], negatives: Sequence[str] = ()) -> None:
        """Learn the intents; ``negatives`` are phrasings that must be out of scope."""
        self.classifier.fit(examples, list(negatives))

    def classify(self, text: str) -> tuple[list[IntentScore], bool]:
        self._check_text(text, "classify")
        if not self.classifier.fitted:
            return [], True
        return self.classifier.classify(text)

    def classify_multi(self, text: str) -> list[IntentScore]:
        """One in-scope intent per request in ``text``, in the order spoken."""
        self._check_text(text, "classify_multi")
        if not self.classifier.fitted or not text.strip():
            return []
        return self.classifier.classify_multi(text)

    def parse(self, text: str, now: datetime | None = None) -> Parse:
        """Intents (empty when out of scope) plus the generic entities found in ``text``."""
        self._check_text(text, "parse")
        with stage_cpu.measured("nlu"):
            ranked, oos = self.classify(text)
            return Parse(
                text=text,
                intents=[] if oos else ranked,
                out_of_scope=oos,
                entities=self.generic_entities(text, now),
            )

    def extract(
        self,
        text: str,
        entity_type: str,
        choices: Sequence[str] | None = None,
        now: datetime | None = None,
    ) -> Entity | None:
        """Slot-directed: read ``text`` as the given type (see ``entities.SLOT_TYPES``)."""
        with stage_cpu.measured("nlu"):
            return self.extractor.extract(text, entity_type, choices=choices, now=now)

    @staticmethod
    def generic_entities(text: str, now: datetime | None = None) -> list[Entity]:
        """Entities worth noting without a slot asking for them; conservative to avoid noise."""
        found: list[Entity] = []
        yes_no = extract_yes_no(text)
        if yes_no and yes_no.confidence >= 0.85:  # only a leading yes/no, not "no one" mid-sentence
            found.append(yes_no)
        when = extract_date_time(text, "datetime", now)
        if when:
            found.append(when)
        amount = extract_amount(text) if _MONEY_CUE.search(text) else None
        if amount:
            found.append(amount)
        digits = extract_digits(text) if not (amount or when) else None
        if digits and len(digits.value) >= 3:
            found.append(digits)
        return found

    @staticmethod
    def _check_text(text: object, where: str) -> None:
        if not isinstance(text, str):
            raise ValueError(f"{where}(): text must be a string, got {type(text).__name__}")


def build_understanding(settings: NluSettings | None = None) -> Understanding:
    """Understanding with the MiniLM hybrid classifier (TF-IDF only if the model is missing).

    Accepts the ``nlu`` section or the whole application ``Settings``.
    """
    nlu_settings = getattr(settings, "nlu", settings) or NluSettings()
    if not isinstance(nlu_settings, NluSettings):
        raise ValueError(
            f"build_understanding(): expected NluSettings or Settings, got {type(settings).__name__}"
        )
    return Understanding(build_classifier(nlu_settings), nlu_settings)
