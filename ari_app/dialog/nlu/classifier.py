"""Intent classification: MiniLM embeddings + TF-IDF, each with logistic regression, averaged.

The average of the two was the measured best (see notes/models.md, "Understanding"). When the
neural model cannot load, the TF-IDF half works alone so nothing crashes.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion

from ari_app.dialog.nlu.embedder import EmbedderUnavailable, MiniLMEmbedder
from ari_app.dialog.nlu.settings import NluSettings
from ari_app.dialog.nlu.types import IntentScore

log = logging.getLogger(__name__)

OUT_OF_SCOPE = "out_of_scope"

# Cue words that usually start a second request; ordered longest first so "and also" wins
# over a bare ", and".
_SPLIT_CUES = re.compile(
    r"\s*(?:,?\s*\band also\b|,?\s*\band then\b|,\s*then\b|,\s*and\b|\bas well as\b"
    # "... and I need a refund": split before the new request so its verb stays with it.
    r"|,?\s*\band(?=\s+i\s+(?:also\s+)?(?:need|want|would like|have to)\b"
    r"|\s+i'd\s+(?:also\s+)?like\b|\s+(?:can|could) you\b|\s+please\b))\s*",
    re.IGNORECASE,
)


def validate_examples(examples: dict[str, list[str]], negatives: Sequence[str]) -> None:
    """Reject training data the classifier cannot learn from, naming the bad intent."""
    if not isinstance(examples, dict) or not examples:
        raise ValueError("intent examples must be a non-empty mapping of intent name -> phrases")
    for name, phrases in examples.items():
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"intent name {name!r} must be a non-empty string")
        if name == OUT_OF_SCOPE:
            raise ValueError(f"intent name {OUT_OF_SCOPE!r} is reserved; pass those as negatives")
        if isinstance(phrases, str) or not phrases:
            raise ValueError(f"intent {name!r} needs a list of at least one example phrase")
        for p in phrases:
            if not isinstance(p, str) or not p.strip():
                raise ValueError(f"intent {name!r} has an empty or non-text example: {p!r}")
    if isinstance(negatives, str):
        raise ValueError("negatives must be a list of phrases, not one string")


class HybridIntentClassifier:
    """Averaged probabilities of (MiniLM + LR) and (TF-IDF char+word n-grams + LR).

    With ``embedder=None`` it is the TF-IDF-only fallback.
    """

    def __init__(self, embedder: MiniLMEmbedder | None, oos_threshold: float = 0.3) -> None:
        self.embedder = embedder
        self.oos_threshold = oos_threshold
        self._labels: list[str] = []
        self._tfidf: FeatureUnion | None = None
        self._tfidf_lr: LogisticRegression | None = None
        self._emb_lr: LogisticRegression | None = None

    @property
    def fitted(self) -> bool:
        return self._tfidf_lr is not None

    def fit(self, examples: dict[str, list[str]], negatives: Sequence[str] = ()) -> None:
        validate_examples(examples, negatives)
        texts: list[str] = []
        labels: list[str] = []
        for name, phrases in examples.items():
            texts += [p.lower() for p in phrases]
            labels += [name] * len(phrases)
        if negatives:
            texts += [n.lower() for n in negatives]
            labels += [OUT_OF_SCOPE] * len(negatives)
        if len(set(labels)) < 2:
            # LR needs two classes; a lone intent is learned against a generic "other" class.
            texts.append("")
            labels.append(OUT_OF_SCOPE)
        self._tfidf = FeatureUnion(
            [
                ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)),
                ("word", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True)),
            ]
        )
        x_tfidf = self._tfidf.fit_transform(texts)
        self._tfidf_lr = LogisticRegression(C=20.0, max_iter=2000).fit(x_tfidf, labels)
        self._labels = list(self._tfidf_lr.classes_)
        self._emb_lr = None
        if self.embedder is not None:
            x_emb = self.embedder.embed(texts)
            self._emb_lr = LogisticRegression(C=20.0, max_iter=2000).fit(x_emb, labels)
            assert list(self._emb_lr.classes_) == self._labels

    def probabilities(self, texts: list[str]) -> np.ndarray:
        """Rows of class probabilities in ``self._labels`` order."""
        if self._tfidf is None or self._tfidf_lr is None:
            raise RuntimeError("intent classifier used before fit(): call fit(examples) first")
        lowered = [t.lower() for t in texts]
        probs = self._tfidf_lr.predict_proba(self._tfidf.transform(lowered))
        if self.embedder is not None and self._emb_lr is not None:
            probs = (probs + self._emb_lr.predict_proba(self.embedder.embed(lowered))) / 2.0
        return probs

    def _rank(self, row: np.ndarray) -> tuple[list[IntentScore], bool]:
        order = np.argsort(-row)
        ranked = [
            IntentScore(self._labels[i], float(row[i])) for i in order if self._labels[i] != OUT_OF_SCOPE
        ]
        best = self._labels[order[0]]
        oos = best == OUT_OF_SCOPE or not ranked or ranked[0].score < self.oos_threshold
        return ranked, oos

    def classify(self, text: str) -> tuple[list[IntentScore], bool]:
        """(intents ranked best first, out_of_scope). Ranked list is full even when out of scope."""
        if not text or not text.strip():
            return [], True
        return self._rank(self.probabilities([text])[0])

    def classify_multi(self, text: str) -> list[IntentScore]:
        """In-scope intents of the clauses of ``text``, in the order spoken, repeats merged."""
        clauses = split_clauses(text)
        if not clauses:
            return []
        found: list[IntentScore] = []
        for row in self.probabilities(clauses):
            ranked, oos = self._rank(row)
            if oos:
                continue
            top = ranked[0]
            same = next((i for i, f in enumerate(found) if f.name == top.name), None)
            if same is None:
                found.append(top)
            elif top.score > found[same].score:
                found[same] = top
        if not found:
            ranked, oos = self.classify(text)
            return [] if oos else ranked[:1]
        return found


def split_clauses(text: str) -> list[str]:
    """Split on multi-intent cue words; drop fragments too short to carry a request."""
    parts = [p.strip(" ,.") for p in _SPLIT_CUES.split(text or "")]
    return [p for p in parts if len(p.split()) >= 2] or ([text.strip()] if text.strip() else [])


def build_classifier(settings: NluSettings | None = None) -> HybridIntentClassifier:
    """The hybrid classifier, or TF-IDF alone (with a warning) when the model cannot load."""
    settings = settings or NluSettings()
    embedder: MiniLMEmbedder | None = None
    if settings.classifier == "hybrid":
        try:
            embedder = MiniLMEmbedder(settings)
            log.info("nlu: MiniLM int8 loaded in %.2fs", embedder.load_seconds)
        except EmbedderUnavailable as e:
            log.warning("nlu: %s; falling back to TF-IDF-only intent classification", e)
    return HybridIntentClassifier(embedder, oos_threshold=settings.oos_threshold)
