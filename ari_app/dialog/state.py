"""What the engine consumes and produces, and the whole conversation state.

Everything here is plain data: the state round-trips through ``to_dict``/``from_dict`` (JSON-safe)
so the lead can store it in Redis after every turn and resume the call in another process.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class CallContext:
    """Who is calling and where; handed to ``DialogEngine.start``."""

    call_id: str
    caller_number: str | None = None
    called_number: str | None = None
    flow: str | None = None  # start this flow instead of the greeting (an outbound call's flow)
    slots: dict[str, Any] = field(default_factory=dict)  # its slots already known (contact data)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CallerInput:
    """One caller turn: recognised speech, pressed digits, or silence (``no_input``)."""

    text: str | None = None
    digits: str | None = None
    asr_confidence: float = 1.0
    no_input: bool = False
    alternatives: tuple[str, ...] = ()  # other ASR hypotheses, best first: the slot's validator may pick one
    # The answer recognition scored against the audio over the open question's closed set (for a
    # yes/no question: the yes or no the turn starts with); it carries its own evidence.
    picked: str | None = None


# --- actions the engine asks the call layer to perform --------------------------------------


@dataclass(frozen=True)
class Say:
    text: str
    interruptible: bool = True
    sensitive: bool = False
    kind: str = "say"


@dataclass(frozen=True)
class Transfer:
    reason: str  # caller_request | no_match | no_input | low_confidence | anger | tool_failure | flow
    queue: str | None
    endpoint: str | None
    summary: str
    context: dict[str, Any] = field(default_factory=dict)
    kind: str = "transfer"


@dataclass(frozen=True)
class Hangup:
    reason: str
    kind: str = "hangup"


@dataclass(frozen=True)
class CollectDigits:
    """A hint: the next answer may be keyed in; stop at ``max`` digits or the terminator."""

    max: int
    terminator: str | None = "#"
    timeout: float = 5.0
    kind: str = "collect_digits"


@dataclass(frozen=True)
class Listen:
    """A hint: what the open question expects, so recognition can listen for it (slot-aware ASR)."""

    slot_type: str
    digits: int | None = None  # a digit string of exactly this many digits
    choices: tuple[str, ...] = ()  # the options offered, as they were spoken
    kind: str = "listen"


Action = Say | Transfer | Hangup | CollectDigits | Listen


def action_to_dict(action: Action) -> dict[str, Any]:
    return asdict(action)


# --- conversation state ---------------------------------------------------------------------


@dataclass
class Frame:
    """One running flow: where it is, what it has collected, and what it waits for."""

    flow: str
    step: int = 0
    slots: dict[str, Any] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)  # tool results by result name
    # What the last prompt asked for: "slot" | "confirm" | "confirm_which" | "menu" | None
    awaiting: str | None = None
    slot: str | None = None  # the slot being collected (awaiting == "slot")
    retries: int = 0  # failed attempts at the open question
    asked: list[str] = field(default_factory=list)  # slots already asked (for ``ask_again``)
    partial: dict[str, str] = field(default_factory=dict)  # the first part of a digit string, by slot
    # A digit string heard before its question, a digit or two off (ASR lost or doubled one):
    # said back when the slot is asked, so the caller knows what to fix.
    near_miss: dict[str, str] = field(default_factory=dict)
    # A long number heard unsurely (low confidence, or hypotheses that disagree), read back and
    # waiting for the caller's yes before it fills its slot (awaiting == "confirm_value").
    tentative: dict[str, str] = field(default_factory=dict)

    def result_at(self, path: str) -> Any:
        """A tool result's field by its dotted path ("slots.times", "appt.date"); None if absent."""
        root, *rest = path.split(".")
        value: Any = self.results.get(root)
        for key in rest:
            value = value.get(key) if isinstance(value, dict) else None
        return value


@dataclass
class ConversationState:
    call_id: str
    caller_number: str | None = None
    frames: list[Frame] = field(default_factory=list)  # stack: last is active
    queued_flows: list[str] = field(default_factory=list)  # multi-intent: handled after the current
    awaiting: str | None = None  # top-level question: "intent" | "clarify" | "anything_else"
    clarify_options: list[str] = field(default_factory=list)
    clarify_text: str = ""  # the request we asked about: what it already said still counts
    last_prompt: str = ""
    no_match_streak: int = 0
    no_input_streak: int = 0
    low_confidence_streak: int = 0
    repeat_streak: int = 0  # "what?" / "say that again" in a row (bounded: MAX_REPEATS)
    # A yes/no answer heard at low ASR confidence and not acted on: the same reading on the next
    # attempt is trusted (two unsure "yes" in a row agree; a lone one is asked again).
    unsure_answer: str | None = None
    transfers_failed: int = 0  # hand-overs that did not connect (no agent, queue down)
    turns: int = 0
    ended: bool = False
    outcome: str | None = None  # set by a flow step's ``outcome:`` (what a campaign reports)
    transcript: list[dict[str, str]] = field(default_factory=list)  # redacted

    @property
    def frame(self) -> Frame | None:
        return self.frames[-1] if self.frames else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConversationState:
        data = dict(data)
        data["frames"] = [Frame(**f) for f in data.get("frames", [])]
        return cls(**data)


@dataclass
class Turn:
    """The engine's answer to one caller turn.

    ``actions`` are performed in order. ``interim`` holds actions that were already handed to
    the ``on_action`` callback while the turn was still running (the holding phrase before a
    slow tool); they are listed for logs and tests, not to be performed again.
    """

    actions: list[Action]
    state: ConversationState
    decision: dict[str, Any]
    interim: list[Action] = field(default_factory=list)

    @property
    def says(self) -> list[str]:
        return [a.text for a in self.actions if isinstance(a, Say)]

    @property
    def transfer(self) -> Transfer | None:
        return next((a for a in self.actions if isinstance(a, Transfer)), None)
