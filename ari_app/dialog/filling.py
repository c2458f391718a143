"""dialog: every slot the caller gives, whenever they give it, and digit strings that converge.

- ``fill_given_slots``: a caller who says name, number and request in one breath, or answers a
  different question than the one asked, has those slots filled (their questions are skipped).
  Only where it is unambiguous: with two unfilled slots of one type (date of birth and new date)
  a value goes to a slot only when its label is named ("born", "birth").
- ``DigitAttempt``: a digit string of the wrong length is read back with what is missing, and
  the next answer may be the rest of it (the turn was cut at a pause between digit groups).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from ari_app.dialog.answers import (
    Rejected,
    Understanding,
    cue_words,
    from_digits,
    from_text,
    is_birth_date,
    keys_a_date,
    validate,
)
from ari_app.dialog.flows import Flow, Slot
from ari_app.dialog.state import Frame

# Types a value can be taken for without being asked: unambiguous enough in free speech.
_CROSS_FILL_TYPES = {"digits", "date", "date_of_birth", "time", "number", "amount", "name"}
_SAME_KIND = {"date_of_birth": "date"}
_DIGITS_REGEX = re.compile(r"^(?:\[0-9\]|\\d)\{(\d+)\}$")

ChoicesOf = Callable[[Slot, Frame], Sequence[str] | None]


def fill_given_slots(
    flow: Flow,
    frame: Frame,
    text: str,
    nlu: Understanding,
    choices_of: ChoicesOf,
    now: datetime,
    *,
    exclude: str | None = None,
) -> dict[str, Any]:
    """Fill the unfilled slots ``text`` gives a value for; returns what was filled."""
    open_slots = [n for n, s in flow.slots.items() if n not in frame.slots and s.type in _CROSS_FILL_TYPES]
    kinds: dict[str, int] = {}
    for n in [*open_slots, *([exclude] if exclude in flow.slots else [])]:
        kind = _SAME_KIND.get(flow.slots[n].type, flow.slots[n].type)
        kinds[kind] = kinds.get(kind, 0) + 1
    said = set(re.findall(r"[a-z]+", text.lower()))
    filled: dict[str, Any] = {}
    for name in open_slots:
        slot = flow.slots[name]
        if name == exclude or (slot.choices_from and not choices_of(slot, frame)):
            continue
        kind = _SAME_KIND.get(slot.type, slot.type)
        # Which of two dates is this? And "last month" is no date of birth: dates need their cue.
        if (kinds[kind] > 1 or kind == "date") and not cue_words(name, slot) & said:
            continue
        ent = from_text(name, slot, text, nlu, choices_of(slot, frame), now)
        if ent is None:
            continue
        try:
            frame.slots[name] = filled[name] = validate(slot, ent.value, choices_of(slot, frame))
        except Rejected:
            continue
    return filled


NEAR_MISS_MIN_DIGITS = 7  # only long numbers: a stray "2" in a sentence is no order number


def near_miss_digits(
    flow: Flow, frame: Frame, text: str, nlu: Understanding, now: datetime
) -> dict[str, str]:
    """Digit strings in ``text`` a digit or two off an unfilled slot's length, by slot."""
    found: dict[str, str] = {}
    for name, slot in flow.slots.items():
        want = expected_digits(slot)
        if name in frame.slots or not want or want < NEAR_MISS_MIN_DIGITS:
            continue
        ent = from_text(name, slot, text, nlu, None, now)
        got = str(ent.value) if ent is not None else ""
        if got.isdigit() and len(got) != want and want - 2 <= len(got) <= want + 1:
            found[name] = got
    return found


CONFIRM_BELOW = 0.55  # ASR confidence under which a long spoken number is read back first


def unsure_number(slot: Slot, value: str, tries: Sequence[Heard], confidence: float) -> bool:
    """A long spoken number worth reading back: heard at low confidence, taken from a later
    hypothesis when the best one was a digit or two off (a digit lost or doubled: the later
    one may be a repair on the audio, speech/digit_repair.py), or another hypothesis gives a
    different valid number. Never for sensitive slots (they are not said back)."""
    want = expected_digits(slot)
    if slot.sensitive or not want or want < NEAR_MISS_MIN_DIGITS or not value.isdigit():
        return False
    rivals = {str(h.value) for h in tries if h.value is not None} - {value}
    best_near_miss = bool(tries) and tries[0].read_back is not None and tries[0].partial is None
    return confidence < CONFIRM_BELOW or bool(rivals) or best_near_miss


def near_miss_prompt(slot: Slot, digits: str) -> str:
    want = expected_digits(slot)
    what = slot.label or "the number"
    return (f"I got {grouped(digits)}. That's {len(digits)} digits, and I need {want}. "
            f"Could you say {what} again, a little slower?")  # fmt: skip


def expected_digits(slot: Slot) -> int | None:
    """How many digits a digits slot wants, when that is one fixed number."""
    if slot.type != "digits":
        return None
    if slot.dtmf and slot.dtmf.length:
        return slot.dtmf.length
    if slot.validation and slot.validation.regex and (m := _DIGITS_REGEX.match(slot.validation.regex)):
        return int(m.group(1))
    if slot.dtmf and slot.dtmf.min_length == slot.dtmf.max_length > 1:
        return slot.dtmf.min_length
    return None


def grouped(digits: str) -> str:
    """Digits read back the way people say them: 5 5 5, 1 2 3, 4 5 6 7."""
    n = len(digits)
    cuts = [0, 3, 6, n] if n == 10 else [*range(0, n, 3), n]
    return ", ".join(" ".join(digits[a:b]) for a, b in itertools.pairwise(cuts) if digits[a:b])


@dataclass(frozen=True)
class DigitAttempt:
    value: str | None  # the whole digit string, when this answer (with the earlier part) makes one
    partial: str | None  # what to keep for the next answer
    say: str | None  # the read-back when it is not whole yet


def combine_digits(heard: str, partial: str | None, want: int, attempt: int, keypad: bool) -> DigitAttempt:
    """This answer's digits, alone or as the rest of the previous answer's, against ``want``."""
    if len(heard) == want:
        return DigitAttempt(heard, None, None)
    if partial and len(partial) + len(heard) == want:
        return DigitAttempt(partial + heard, None, None)
    count = f"That's {len(heard)} digit{'s' if len(heard) != 1 else ''}, and I need {want}."
    # A few digits short of the whole: a group, the turn ended at a pause. Go on from there.
    # One or two short (or too many): a digit was lost or doubled; the whole number again.
    continues = len(heard) <= want - 3
    if attempt >= 1 and keypad:
        ask = f"Let's try the keypad: please type the {want} digits, then press pound."
    elif continues:
        ask = "Please go on with the rest."
    else:
        ask = "Please say the whole number again, a little slower."
    keep = heard if continues else None
    return DigitAttempt(None, keep, f"I got {grouped(heard)}. {count} {ask}")


KEYED_DATE_DIGITS = 8  # MMDDYYYY, the longest date a caller keys (answers.keyed_date)


def keypad_hint(name: str, slot: Slot) -> str | None:
    """How to answer on the keypad instead, once saying it has failed (None: no keypad here).
    Dates can always be keyed, whatever the flow's dtmf settings say."""
    if keys_a_date(slot):
        if is_birth_date(name, slot):
            return "You can also key it in: month, day and year, like 0 3 0 3 1 9 8 0 for March 3rd, 1980."
        return "You can also key it in: the month and day as four digits, like 1 2 0 9 for December 9th."
    if slot.dtmf is not None and slot.dtmf.allowed and not slot.dtmf.menu:
        return "You can also type it on your keypad."
    return None


_WEEKDAY = re.compile(r"\b(?:mon|tues|wednes|thurs|fri|satur|sun)day\b", re.IGNORECASE)
# A date said in full: a number, a month, or "this" (Thursday).
_NAMES_THE_DATE = re.compile(
    r"\d|\b(?:january|february|march|april|may|june|july|august|september|october|november|december"
    r"|jan|feb|mar|apr|jun|jul|aug|sept?|oct|nov|dec|this|today|tomorrow)\b",
    re.IGNORECASE,
)
SAME_DAY_AGAIN = "That's the day you have already. Which other day would you like?"


def moved_date(slot: Slot, frame: Frame, value: Any, text: str) -> Any:
    """A new date for one that must change (``differs_from``). "Thursday" when the appointment
    is this Thursday means the Thursday after: nobody moves a thing to the day it is on. The same
    date said in full ("December 10th", "this Thursday", keyed) is asked again: raises Rejected."""
    if not slot.differs_from or not isinstance(value, str):
        return value
    current = str(frame.result_at(slot.differs_from) or "")[:10]
    if value != current:
        return value
    if _WEEKDAY.search(text) and not _NAMES_THE_DATE.search(text):
        return (date.fromisoformat(value) + timedelta(days=7)).isoformat()
    raise Rejected(SAME_DAY_AGAIN, asks=True)


@dataclass(frozen=True)
class Heard:
    """One answer (a hypothesis or a key entry) read as the open slot's value."""

    text: str = ""
    value: Any = None
    rejected: str | None = None
    asks: bool = False  # the rejection message already asks again
    read_back: str | None = None  # a digit string of the wrong length, said back
    partial: str | None = None  # the first part of a digit string, kept for the next answer


def read_keyed(
    name: str,
    slot: Slot,
    frame: Frame,
    digits: str,
    choices: Sequence[str] | None,
    now: datetime | None = None,
) -> Heard:
    try:
        value = from_digits(slot, digits, choices, now, birth=is_birth_date(name, slot))
        return Heard(digits, moved_date(slot, frame, validate(slot, value, choices), ""))
    except Rejected as e:
        return Heard(digits, rejected=str(e), asks=e.asks)


def read_spoken(
    name: str,
    slot: Slot,
    frame: Frame,
    text: str,
    choices: Sequence[str] | None,
    nlu: Understanding,
    now: datetime,
) -> Heard:
    """What one transcript gives the slot. No side effects: the engine picks among hypotheses."""
    ent = from_text(name, slot, text, nlu, choices, now, future_birth=True)
    value = ent.value if ent is not None else None
    want = expected_digits(slot)
    read_back = partial = None
    if want and isinstance(value, str) and value.isdigit():
        got = combine_digits(value, frame.partial.get(name), want, frame.retries,
                             keypad=bool(slot.dtmf and slot.dtmf.allowed))  # fmt: skip
        value, read_back, partial = got.value, got.say, got.partial
    if value is None:
        return Heard(text, read_back=read_back, partial=partial)
    try:
        value = moved_date(slot, frame, validate(slot, value, choices), text)
        if is_birth_date(name, slot) and str(value) > now.date().isoformat():
            raise Rejected("That date is still to come. What's your date of birth?", asks=True)
    except Rejected as e:
        return Heard(text, rejected=str(e), asks=e.asks)
    return Heard(text, value)
