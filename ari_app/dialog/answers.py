"""Turning one caller answer into a slot value: say (via the understanding's slot-directed
extractor) or press (per the slot's DTMF config), then the slot's validation rules."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, Protocol

from rapidfuzz import fuzz, process

from ari_app.dialog.flows import Slot
from ari_app.dialog.nlu.entities.offered import match_offered_time, said_time
from ari_app.dialog.nlu.types import Entity, Parse
from ari_app.dialog.repair import yes_no
from ari_app.dialog.templates import SPOKEN_FORMATS


class Understanding(Protocol):
    def fit(self, examples: dict[str, list[str]], negatives: Sequence[str] = ()) -> None: ...
    def parse(self, text: str) -> Parse: ...
    def extract(
        self, text: str, entity_type: str, choices: Sequence[str] | None = None, now: datetime | None = None
    ) -> Entity | None: ...


_LABEL_NOISE = {"your", "the", "a", "an", "of", "on", "number", "date", "account", "for", "to"}
_SYNONYMS = {"birth": {"born", "birthday"}, "phone": {"cell", "mobile", "telephone"}}


def cue_words(name: str, slot: Slot) -> set[str]:
    """Words a caller uses to name this slot: its label's and name's, with synonyms ("born")."""
    words = set(re.findall(r"[a-z]+", f"{slot.label or ''} {name.replace('_', ' ')}".lower())) - _LABEL_NOISE
    for w in list(words):
        words |= _SYNONYMS.get(w, set())
    return words


def is_birth_date(name: str, slot: Slot) -> bool:
    """A date of birth, by type or by name ("dob: {type: date, label: your date of birth}")."""
    return slot.type == "date_of_birth" or "birth" in cue_words(name, slot)


class Rejected(ValueError):
    """The answer was understood but breaks the slot's rules; the message is said to the caller.
    ``asks``: the message already asks again (no reprompt after it)."""

    def __init__(self, message: str, *, asks: bool = False) -> None:
        super().__init__(message)
        self.asks = asks


_NUMBER_WORDS = {"zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
                 "six": "6", "seven": "7", "eight": "8", "nine": "9", "first": "1", "second": "2",
                 "third": "3", "fourth": "4"}  # fmt: skip


def ordinal_pick(text: str, options: Sequence[str]) -> str | None:
    """ "the second one", "first": the option by its place in the list we read out."""
    lowered = text.lower().rstrip(" .!?")
    for word, digit in _NUMBER_WORDS.items():
        if word in ("first", "second", "third", "fourth") and re.search(
            rf"\b(?:the\s+)?{word}\b(?:\s+one)?(?:\s+please)?\s*$", lowered
        ):
            idx = int(digit) - 1
            if 0 <= idx < len(options):
                return options[idx]
    return None


def match_choice(text: str, options: Sequence[str], cutoff: float = 75) -> str | None:
    """The option a caller named ("the second one", "billing", "2:30"), fuzzy but strict."""
    if not options:
        return None
    if picked := ordinal_pick(text, options):
        return picked
    lowered = text.lower()
    found = process.extractOne(lowered, [o.lower() for o in options], scorer=fuzz.token_set_ratio)
    if found and found[1] >= cutoff:
        return options[found[2]]
    return None


def keys_a_date(slot: Slot) -> bool:
    """A date slot can always be keyed (MMDD / MMDDYYYY), unless its flow says no keys or a menu."""
    return slot.type == "date" and (slot.dtmf is None or (slot.dtmf.allowed and not slot.dtmf.menu))


def keyed_date(digits: str, today: date, *, birth: bool) -> str:
    """A date keyed as MMDD (a date ahead: this year's, or next year's once past) or MMDDYYYY.
    ISO like the spoken extractor's value; raises Rejected naming what to key."""
    example = "0 3 0 3 1 9 8 0 for March 3rd, 1980" if birth else "1 2 0 9 for December 9th"
    if not digits.isdigit() or len(digits) not in ((8,) if birth else (4, 8)):
        need = "eight digits: month, day and year" if birth else "four digits: month, then day"
        raise Rejected(f"Please key the date as {need}, like {example}.", asks=True)
    month, day = int(digits[:2]), int(digits[2:4])
    year = int(digits[4:]) if len(digits) == 8 else today.year
    try:
        value = date(year, month, day)
        if len(digits) == 4 and value < today:
            value = date(year + 1, month, day)
    except ValueError:
        raise Rejected(f"That isn't a date I know. Please key it like {example}.", asks=True) from None
    if birth and value > today:
        raise Rejected("That date is still to come. What's your date of birth?", asks=True)
    return value.isoformat()


def from_digits(
    slot: Slot,
    digits: str,
    choices: Sequence[str] | None,
    now: datetime | None = None,
    *,
    birth: bool = False,
) -> Any:
    """A keyed-in answer. Returns the value, or raises Rejected."""
    dtmf = slot.dtmf
    if keys_a_date(slot):
        return keyed_date(digits.rstrip("#"), (now or datetime.now()).date(), birth=birth)
    if dtmf is None or not dtmf.allowed:
        raise Rejected("Please say your answer.")
    if dtmf.terminator:
        digits = digits.rstrip(dtmf.terminator)
    if dtmf.menu:
        if digits in dtmf.menu:
            return dtmf.menu[digits]
        raise Rejected("That's not one of the options.")
    if slot.type == "yes_no":
        return {"1": "yes", "2": "no"}.get(digits) or _raise("Press 1 for yes or 2 for no.")
    if slot.type in ("choice", "time") and choices and digits.isdigit() and 1 <= int(digits) <= len(choices):
        return choices[int(digits) - 1]
    if not digits.isdigit():
        raise Rejected("Please use the number keys.")
    if dtmf.length and len(digits) != dtmf.length:
        raise Rejected(f"That should be {dtmf.length} digits.")
    if not dtmf.min_length <= len(digits) <= dtmf.max_length:
        raise Rejected("That doesn't look like the right number of digits.")
    if slot.type in ("number", "amount"):
        return int(digits)
    return digits


def _raise(msg: str) -> Any:
    raise Rejected(msg)


def from_text(
    name: str,
    slot: Slot,
    text: str,
    nlu: Understanding,
    choices: Sequence[str] | None,
    now: datetime | None,
    *,
    future_birth: bool = False,
) -> Entity | None:
    """A spoken answer, extracted for slot ``name``'s type (None when nothing fits). A date of
    birth (is_birth_date) is read as a past date, with a spoken year's repairs; one still to come
    is no answer, unless ``future_birth`` (the asked answer, so the caller can be told)."""
    if slot.type == "text":
        return Entity("text", text.strip(), text, 1.0)
    if slot.type == "yes_no":
        ent = nlu.extract(text, "yes_no")
        if ent is None and (yn := yes_no(text)):
            ent = Entity("yes_no", yn, text, 0.8)
        return ent
    if slot.type == "time" and choices:  # the offers first, in every form ASR writes a time
        if picked := match_offered_time(text, choices) or ordinal_pick(text, choices):
            return Entity("time", picked, text, 0.9)
        # Not one of them: still read it as a time, so validation can say what is available.
        return said_time(text)
    if slot.type == "choice":
        ent = nlu.extract(text, "choice", choices=choices, now=now)
        if ent is None and (picked := match_choice(text, choices or [])):
            ent = Entity("choice", picked, text, 0.8)
        return ent
    if slot.type == "date" and is_birth_date(name, slot):
        ent = nlu.extract(text, "date_of_birth", choices=choices, now=now)
        today = (now or datetime.now()).date().isoformat()
        return ent if ent is None or future_birth or str(ent.value) <= today else None
    return nlu.extract(text, slot.type, choices=choices, now=now)


def validate(slot: Slot, value: Any, choices: Sequence[str] | None) -> Any:
    """Apply the slot's rules; raise Rejected with what to say."""
    rules = slot.validation
    if choices is not None and slot.type in ("choice", "time") and value not in choices:
        offered = SPOKEN_FORMATS["times" if slot.type == "time" else "list"](list(choices))
        if not choices:
            raise Rejected("That one isn't available.")
        raise Rejected(f"That one isn't available. I have {offered}. Which would you like?", asks=True)
    if rules is None:
        return value
    msg = rules.message
    text = str(value)
    if rules.regex and not re.fullmatch(rules.regex, text):
        raise Rejected(msg or "That doesn't look right.")
    if rules.min_length is not None and len(text) < rules.min_length:
        raise Rejected(msg or "That seems too short.")
    if rules.max_length is not None and len(text) > rules.max_length:
        raise Rejected(msg or "That seems too long.")
    if rules.choices is not None and value not in rules.choices:
        raise Rejected(msg or "That isn't one of the options.")
    if rules.min is not None or rules.max is not None:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise Rejected(msg or "I need a number there.") from None
        if rules.min is not None and number < rules.min:
            raise Rejected(msg or "That number is too small.")
        if rules.max is not None and number > rules.max:
            raise Rejected(msg or "That number is too large.")
    return value
