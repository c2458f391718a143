"""Recognising the conversational repair moves callers make, independent of any flow.

These are deliberately phrase rules, not model calls: they must be predictable, fast, and
work with no model at all. Flows can switch a pattern off or change what it says
(``patterns:`` in the flow file); escalation cues (a person, anger) live in ``policy.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CANCEL = re.compile(
    r"\b(?:never\s*mind|forget\s+(?:it|about\s+it)|scratch\s+that|"
    r"(?:cancel|stop|quit|abort)(?:\s+(?:that|this|it))?(?:\s+please)?\W*$|"
    r"i\s+(?:don'?t|do\s+not)\s+want\s+(?:to\s+do\s+)?(?:that|this|it)(?:\s+anymore)?)"
    r"|^\W*(?:please\s+)?(?:cancel|stop|quit|abort)\W*$",
    re.I,
)
_REPEAT = re.compile(
    r"\b(?:say\s+(?:that|it)\s+again|repeat(?:\s+(?:that|it|please))?|come\s+again|pardon(?:\s+me)?"
    r"|what\s+did\s+you\s+(?:just\s+)?say|i\s+didn'?t\s+(?:hear|catch)\s+(?:that|you)|one\s+more\s+time)\b"
    r"|^\W*(?:sorry|what|huh|excuse\s+me)\W*$",
    re.I,
)
_SKIP = re.compile(
    r"^\W*(?:skip(?:\s+(?:it|that|this))?|i\s+(?:don'?t|do\s+not)\s+(?:know|have\s+(?:it|one|that))"
    r"|not\s+sure|pass|next)\W*$",
    re.I,
)
_CORRECTION = re.compile(
    r"\b(?:actually|make\s+(?:that|it)|change\s+(?:that|it|the\s+\w+(?:\s+\w+)?)\s+to|i\s+meant|"
    r"i\s+mean|instead|rather|not\s+\w+\s*,?\s*(?:but\s+)?|no\s*,|wait)\b",
    re.I,
)
# The strong forms only: a change of an earlier answer even when the new value is unreadable.
CHANGE_REQUEST = re.compile(r"\b(?:make\s+(?:that|it)|change\s+(?:that|it)|i\s+meant)\b", re.I)
_MULTI_SPLIT = re.compile(
    r"\s*(?:,\s*)?\b(?:and\s+(?:also|then)|and\s+i\s+(?:also\s+)?(?:want|need|would\s+like)"
    r"|and\s+(?:can|could)\s+you|also|plus|after\s+that|then)\b\s*|[.;?!]\s+",
    re.I,
)
_YES = re.compile(
    r"^\W*(?:yes|yeah|yep|yup|sure|correct|right|that'?s\s+(?:right|correct|it)|ok(?:ay)?|"
    r"absolutely|please\s+do|go\s+ahead|sounds\s+good|of\s+course)\b",
    re.I,
)
_NO = re.compile(
    r"^\W*(?:no|nope|nah|not\s+really|that'?s\s+(?:wrong|not\s+right)|incorrect|negative)\b", re.I
)


# "Anything else?" -> "That's all": a no in that context only ("that's it" elsewhere is a yes).
_DONE = re.compile(
    # "Know that's it.": how Whisper wrote a "No, that's it." on a held-out task-success call.
    r"^\W*(?:(?:(?:no|nope|know)\W+)?(?:that'?s|that\s+is|that\s+will\s+be|that'?ll\s+be)\s+(?:all|it|everything)"
    r"|nothing\s+(?:else|more)|i'?m\s+(?:good|done|fine|all\s+set)|all\s+set|we'?re\s+(?:good|done))\b",
    re.I,
)


def done_for_now(text: str) -> bool:
    """The caller's answer to "anything else?" says they have finished."""
    return bool(_DONE.search(text))


@dataclass(frozen=True)
class Cues:
    cancel: bool
    repeat: bool
    skip: bool
    correction: bool


def detect(text: str) -> Cues:
    return Cues(
        cancel=bool(_CANCEL.search(text)),
        repeat=bool(_REPEAT.search(text)),
        skip=bool(_SKIP.search(text)),
        correction=bool(_CORRECTION.search(text)),
    )


def yes_no(text: str) -> str | None:
    """A quick yes/no reading for confirmations (the NLU's yes_no extractor is asked first)."""
    if _NO.search(text):
        return "no"
    if _YES.search(text):
        return "yes"
    return None


def after_no(text: str) -> str:
    """What the caller said after a leading no ("No, I want to reschedule" -> "I want to reschedule")."""
    m = _NO.search(text)
    return text[m.end() :].strip(" ,.;!-") if m else text


def split_requests(text: str) -> list[str]:
    """'I need a refund and also check my order' -> two parts; tiny fragments are dropped."""
    parts = [p.strip(" ,.") for p in _MULTI_SPLIT.split(text) if p and p.strip(" ,.")]
    return [p for p in parts if len(p.split()) >= 2] or [text]
