"""Yes / no answers, with "yes but ..." and "no, the fifth" flagged as corrections."""

from __future__ import annotations

import re

from ari_app.dialog.nlu.entities.spoken import clean
from ari_app.dialog.nlu.types import Entity

# Longest phrases first so "not really" beats "really" and "that's not right" beats "right".
_PHRASES: list[tuple[str, str]] = sorted(
    [(p, "yes") for p in (
        "yes", "yeah", "yea", "yep", "yup", "ya", "sure", "correct", "right", "that's right",
        "that is right", "that's correct", "that is correct", "absolutely", "definitely",
        "of course", "ok", "okay", "uh huh", "mhm", "affirmative", "sounds good", "go ahead",
        "please do", "exactly", "indeed", "certainly", "i do", "it is", "that's it",
        "you got it", "alright", "all right", "yes please", "sure thing", "why not", "yay", "yeah yeah",
    )]
    + [(p, "no") for p in (
        "no", "nope", "nah", "not really", "not at all", "negative", "wrong", "that's wrong",
        "that is wrong", "incorrect", "that's not right", "that is not right",
        "that's not correct", "not correct", "no thanks", "no thank you", "i don't",
        "i do not", "don't", "it's not", "it is not", "never", "uh uh", "absolutely not",
        "definitely not", "of course not", "no way",
    )],
    key=lambda pv: -len(pv[0]),
)  # fmt: skip
_FILLER = {
    "please", "thanks", "thank", "you", "it", "is", "sir", "ma'am", "that's", "that", "oh", "um",
    "uh", "well", "so", "yes", "yeah", "no", "nope", "sure", "right", "correct", "okay", "ok",
}  # fmt: skip
# Agreement words that answer "Shall I book it?" as a yes only when they are the whole answer
# ("Good." / "Perfect, thanks."): at the start of a longer sentence they mean something else
# ("good morning, I need ..."), so they never lead a longer reading. A 15 dB "yes" reached us
# as "Good." three times running (task-success run 8).
_AGREEMENT = {
    "good", "great", "perfect", "fine", "lovely", "brilliant", "cool", "excellent", "wonderful",
    "that works", "works for me", "that's fine", "that's good", "that's great", "that's perfect",
    "that'll work", "that will work", "that would be great", "sounds great", "sounds fine",
    "sounds perfect", "do it", "book it", "please", "yes do", "go for it", "let's do it",
}  # fmt: skip
_CORRECTION_CUES = re.compile(r"^(?:but|actually|except|however|instead|rather|not)\b")


def extract_yes_no(text: str) -> Entity | None:
    """ "yes"/"no" with confidence; correction=True when the caller adds different content."""
    norm = clean(text)
    if not norm:
        return None
    bare = " ".join(w for w in norm.split() if w not in _FILLER or w == "please")
    if bare in _AGREEMENT or norm in _AGREEMENT:
        return Entity("yes_no", "yes", text.strip(), 0.8)
    for phrase, value in _PHRASES:
        if norm == phrase or norm.startswith(phrase + " "):
            rest = norm[len(phrase) :].strip()
            content = [w for w in rest.split() if w not in _FILLER]
            correction = bool(_CORRECTION_CUES.match(rest)) or bool(content)
            return Entity("yes_no", value, text.strip(), 0.95 if not content else 0.85, correction)
    # Not leading the utterance ("i think so yes"): weaker, and the last answer word wins.
    hits = [
        (m.start(), value)
        for phrase, value in _PHRASES
        for m in re.finditer(rf"\b{re.escape(phrase)}\b", norm)
        if len(phrase) > 2 or phrase in ("no", "ok")
    ]
    if not hits:
        if norm in ("i think so", "i guess so", "i believe so"):
            return Entity("yes_no", "yes", text.strip(), 0.7)
        return None
    hits.sort()
    return Entity("yes_no", hits[-1][1], text.strip(), 0.6)
