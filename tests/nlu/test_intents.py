"""Intent classification on held-out phrasings (none of these are training examples)."""

from __future__ import annotations

import logging

import pytest

from ari_app.dialog.nlu import Understanding, build_understanding
from ari_app.dialog.nlu.classifier import split_clauses
from ari_app.dialog.nlu.settings import NluSettings

HELD_OUT = [
    ("i got charged two times for the same thing", "billing_refund"),
    ("i want my money returned", "billing_refund"),
    ("can i change the day of my appointment", "reschedule_appointment"),
    ("i won't be able to make my appointment on monday", "reschedule_appointment"),
    ("where exactly is my package right now", "order_status"),
    ("my order still hasn't shown up", "order_status"),
    ("can i please speak to an actual person", "talk_to_agent"),
    ("get me a representative", "talk_to_agent"),
    ("no forget it cancel", "cancel"),
    ("stop i don't want this", "cancel"),
    ("sorry can you say that one more time", "repeat"),
    ("i didn't understand what you said", "repeat"),
    ("ok that's all bye", "goodbye"),
    ("thank you so much goodbye", "goodbye"),
    ("what time do you open on monday", "faq_hours"),
    ("are you open this weekend", "faq_hours"),
]


@pytest.mark.parametrize(("text", "intent"), HELD_OUT)
def test_held_out_intents(understanding: Understanding, text: str, intent: str) -> None:
    parse = understanding.parse(text)
    assert not parse.out_of_scope, parse
    assert parse.intents[0].name == intent
    scores = [s.score for s in parse.intents]
    assert scores == sorted(scores, reverse=True) and 0 < scores[0] <= 1


CHIT_CHAT = [
    "what's the weather in london",
    "tell me a story",
    "do you like dogs",
    "how tall are you",
    "who made you",
    "what's your favourite food",
]


def test_chit_chat_is_out_of_scope(understanding: Understanding) -> None:
    rejected = [t for t in CHIT_CHAT if understanding.parse(t).out_of_scope]
    # Thresholds are probabilistic; at least 5 of 6 unseen chit-chat lines must be rejected.
    assert len(rejected) >= 5, f"only rejected {rejected}"
    assert all(understanding.parse(t).intents == [] for t in rejected)


def test_split_clauses() -> None:
    assert split_clauses("I was charged twice last month and I need a refund") == [
        "I was charged twice last month",
        "I need a refund",
    ]
    assert split_clauses("I want to check my order and also reschedule my appointment") == [
        "I want to check my order",
        "reschedule my appointment",
    ]
    assert split_clauses("salt and pepper") == ["salt and pepper"]


def test_multi_intent_same_request_twice_is_one_intent(understanding: Understanding) -> None:
    intents = understanding.classify_multi("I was charged twice last month and I need a refund")
    assert [i.name for i in intents] == ["billing_refund"]


def test_multi_intent_in_spoken_order(understanding: Understanding) -> None:
    intents = understanding.classify_multi("I want to check my order and also reschedule my appointment")
    assert [i.name for i in intents] == ["order_status", "reschedule_appointment"]
    reverse = understanding.classify_multi("move my appointment to friday, and where is my package")
    assert [i.name for i in reverse] == ["reschedule_appointment", "order_status"]


def test_parse_carries_entities(understanding: Understanding) -> None:
    from tests.nlu.conftest import NOW

    parse = understanding.parse("can i move my appointment to the third at two pm", now=NOW)
    assert parse.intents[0].name == "reschedule_appointment"
    assert [(e.type, e.value) for e in parse.entities] == [("datetime", "2025-07-03T14:00")]
    refund = understanding.parse("you charged me forty dollars and fifty cents twice")
    assert ("amount", "40.50") in [(e.type, e.value) for e in refund.entities]
    answer = understanding.parse("no, the fifth", now=NOW)
    yes_no = [e for e in answer.entities if e.type == "yes_no"]
    assert yes_no and yes_no[0].value == "no" and yes_no[0].correction


def test_tfidf_fallback_when_model_missing(tmp_path, caplog, training: dict) -> None:
    settings = NluSettings(model_path=tmp_path / "missing.onnx")
    with caplog.at_level(logging.WARNING):
        u = build_understanding(settings)
    assert not u.uses_embeddings
    assert "falling back to TF-IDF" in caplog.text and "missing.onnx" in caplog.text
    u.fit(training["examples"], training["negatives"])
    assert u.parse("where is my package").intents[0].name == "order_status"


def test_unfitted_understanding_only_extracts(training: dict) -> None:
    u = build_understanding(NluSettings(classifier="tfidf"))
    parse = u.parse("yes")
    assert parse.out_of_scope and parse.intents == []
    assert [(e.type, e.value) for e in parse.entities] == [("yes_no", "yes")]
