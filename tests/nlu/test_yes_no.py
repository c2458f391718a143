from __future__ import annotations

import pytest

from ari_app.dialog.nlu.entities import SpokenEntityExtractor

extract = SpokenEntityExtractor().extract

ANSWERS = [
    ("yes", "yes", False),
    ("yeah", "yes", False),
    ("yep", "yes", False),
    ("sure", "yes", False),
    ("correct", "yes", False),
    ("that's right", "yes", False),
    ("yes please", "yes", False),
    ("yeah that's correct", "yes", False),
    ("of course", "yes", False),
    ("okay", "yes", False),
    ("nope", "no", False),
    ("no", "no", False),
    ("not really", "no", False),
    ("nah", "no", False),
    ("no thank you", "no", False),
    ("that's not right", "no", False),
    ("yes but make it the fifth", "yes", True),
    ("no, the fifth", "no", True),
    ("no it's tuesday", "no", True),
    ("yeah actually can we do four", "yes", True),
]


@pytest.mark.parametrize(("spoken", "value", "correction"), ANSWERS)
def test_yes_no(spoken: str, value: str, correction: bool) -> None:
    entity = extract(spoken, "yes_no")
    assert entity is not None and (entity.type, entity.value) == ("yes_no", value)
    assert entity.correction is correction


def test_buried_answer_is_less_confident() -> None:
    entity = extract("well i guess that's right", "yes_no")
    assert entity is not None and entity.value == "yes" and entity.confidence < 0.85


@pytest.mark.parametrize("spoken", ["what time is it", "the blue one", "hmm"])
def test_not_an_answer(spoken: str) -> None:
    assert extract(spoken, "yes_no") is None


@pytest.mark.parametrize(
    "spoken", ["Good.", "Perfect, thanks.", "That works for me.", "Yay.", "Great", "please", "fine thank you"]
)
def test_agreement_words_alone_are_a_yes(spoken: str) -> None:
    # A 15 dB "yes" reached us as "Good." three times; "Yay." is how Whisper writes some accents' "yeah".
    entity = extract(spoken, "yes_no")
    assert entity is not None and entity.value == "yes"


@pytest.mark.parametrize(
    "spoken", ["good morning i need to reschedule", "please connect me", "a free consultation"]
)
def test_agreement_words_do_not_lead_a_sentence(spoken: str) -> None:
    entity = extract(spoken, "yes_no")
    assert entity is None or entity.confidence < 0.85
