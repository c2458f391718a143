"""The flow file format (YAML), as pydantic models that refuse unknown keys.

A flows file::

    greeting: "Thanks for calling. How can I help?"
    entry_flow: main_menu            # optional: start a flow at once (e.g. a DTMF menu)
    tools: {name: Tool}              # webhooks the steps may call
    flows: {name: Flow}              # each flow: description, examples, slots, steps

Steps are written by kind: ``- collect: phone``, ``- say: "..."``, ``- confirm: "..."``,
``- call: tool``, ``- branch: [...]``, ``- transfer: {...}``, ``- end: "..."``,
``- menu: {...}``. Semantic checks (undefined names, unreachable steps, cycles) live in
``loader.py``.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

SlotType = Literal[
    "text", "date", "time", "datetime", "digits", "amount", "yes_no", "name", "choice", "number"
]
PatternName = Literal["correction", "cancel", "repeat", "skip", "digression", "clarification", "multi_intent"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Goto(_Model):
    goto: str  # a step id in the same flow


# What happens when a slot cannot be filled, or a tool keeps failing.
FailureAction = Literal["transfer", "skip", "end", "continue"] | Goto


class Validation(_Model):
    regex: str | None = None
    min: float | None = None  # numbers/amounts: value range
    max: float | None = None
    min_length: int | None = Field(default=None, ge=0)  # text/digits: length range
    max_length: int | None = Field(default=None, ge=1)
    choices: list[str] | None = None
    message: str | None = None  # said when a value fails validation


class Dtmf(_Model):
    allowed: bool = True
    min_length: int = Field(default=1, ge=1)
    max_length: int = Field(default=20, ge=1)
    length: int | None = Field(default=None, ge=1)  # fixed length: complete without '#'
    terminator: str | None = Field(default="#", pattern=r"^[#*]$")
    timeout: float = Field(default=5.0, gt=0)
    menu: dict[str, str] | None = None  # digit -> choice (or yes/no)


class Slot(_Model):
    type: SlotType
    prompt: str
    reprompts: list[str] = Field(default_factory=list)  # escalating; the prompt is re-used if empty
    label: str | None = None  # how the agent names it ("your date of birth")
    validation: Validation | None = None
    choices_from: str | None = None  # e.g. "slots.times": choices offered by a tool result
    # A date that must change from a tool result's ("appt.date"): a weekday alone that lands on
    # it means that weekday a week on; the same date said in full is asked again.
    differs_from: str | None = None
    max_retries: int = Field(default=3, ge=1)
    on_failure: FailureAction = "transfer"
    sensitive: bool = False
    prefill: bool = False  # may be filled from the utterance that started the flow
    dtmf: Dtmf | None = None


class PatternOverride(_Model):
    enabled: bool = True
    say: str | None = None


class _Step(_Model):
    id: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    next: str | None = None  # step id or "end"; default: the following step
    reset: list[str] = Field(default_factory=list)  # say steps: slots emptied after saying (to ask again)
    # The call's outcome once this step runs (e.g. confirmed, opted_out): campaign results report it.
    outcome: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]*$")


class CollectStep(_Step):
    kind: ClassVar[str] = "collect"
    collect: str
    ask_again: bool = False  # ask even when the slot was prefilled
    prompt: str | None = None  # ask in these words here (e.g. a second try), not the slot's prompt


class SayStep(_Step):
    kind: ClassVar[str] = "say"
    say: str


class ConfirmStep(_Step):
    kind: ClassVar[str] = "confirm"
    confirm: str  # read-back template: "So that's {date:date} at {time:time}. Is that right?"
    change: list[str] = Field(default_factory=list)  # slots the caller may change on "no"


class CallStep(_Step):
    kind: ClassVar[str] = "call"
    call: str  # tool name (declared under tools:)
    args: dict[str, Any] = Field(default_factory=dict)  # values are templates
    result: str | None = None  # name the result is stored under; default: the tool name
    on_failure: FailureAction | None = None  # overrides the tool's fallback "then"


class Condition(_Model):
    when: str  # "slot" or "result.field"
    equals: Any = None
    not_equals: Any = None
    in_: list[Any] | None = Field(default=None, alias="in")
    exists: bool | None = None
    empty: bool | None = None
    gt: float | None = None
    lt: float | None = None
    goto: str


class BranchStep(_Step):
    kind: ClassVar[str] = "branch"
    branch: list[Condition]
    else_: str | None = Field(default=None, alias="else")


class TransferSpec(_Model):
    queue: str | None = None
    endpoint: str | None = None
    reason: str = "flow"
    summary: str | None = None  # template


class TransferStep(_Step):
    kind: ClassVar[str] = "transfer"
    transfer: TransferSpec


class EndStep(_Step):
    kind: ClassVar[str] = "end"
    end: str | None = None
    hangup: bool = False  # False: ask "anything else?"; True: say goodbye and hang up


class MenuOption(_Model):
    label: str
    synonyms: list[str] = Field(default_factory=list)
    flow: str | None = None
    goto: str | None = None
    transfer: TransferSpec | None = None
    say: str | None = None


class MenuSpec(_Model):
    prompt: str | None = None  # default: "Press 1 for <label>, 2 for ..."
    options: dict[str, MenuOption]
    max_retries: int = Field(default=3, ge=1)


class MenuStep(_Step):
    kind: ClassVar[str] = "menu"
    menu: MenuSpec


STEP_KINDS = ("collect", "say", "confirm", "call", "branch", "transfer", "end", "menu")


def _step_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        kinds = [k for k in STEP_KINDS if k in value]
        return kinds[0] if len(kinds) == 1 else None
    return getattr(value, "kind", None)


Step = Annotated[
    Annotated[CollectStep, Tag("collect")]
    | Annotated[SayStep, Tag("say")]
    | Annotated[ConfirmStep, Tag("confirm")]
    | Annotated[CallStep, Tag("call")]
    | Annotated[BranchStep, Tag("branch")]
    | Annotated[TransferStep, Tag("transfer")]
    | Annotated[EndStep, Tag("end")]
    | Annotated[MenuStep, Tag("menu")],
    Discriminator(
        _step_kind,
        custom_error_type="step_kind",
        custom_error_message="a step needs exactly one of: " + ", ".join(STEP_KINDS),
    ),
]


class Flow(_Model):
    description: str
    label: str | None = None  # spoken name: "your refund"
    examples: list[str] = Field(default_factory=list)
    negative_examples: list[str] = Field(default_factory=list)
    digression: bool = False  # a short info flow that may interrupt another and then resume it
    slots: dict[str, Slot] = Field(default_factory=dict)
    # Values the flow is started with, never asked (an outbound call's contact data: name, date...)
    inputs: list[str] = Field(default_factory=list)
    # Said when the caller stays silent to the end (then the call ends, outcome no_response)
    # instead of a transfer: for flows we call out with, where nobody asked for a person.
    silence_end: str | None = None
    steps: list[Step] = Field(min_length=1)
    patterns: dict[PatternName, PatternOverride] = Field(default_factory=dict)


class Fallback(_Model):
    say: str = "Sorry, I can't reach that system right now."
    then: Literal["transfer", "continue", "end"] = "transfer"


class Tool(_Model):
    url: str  # may use ${ENV_VAR} or ${ENV_VAR:-default}
    method: Literal["GET", "POST", "PUT", "PATCH"] = "POST"
    args_schema: dict[str, Any] = Field(default_factory=lambda: {"type": "object"})
    timeout: float = Field(default=3.0, gt=0)
    retries: int = Field(default=1, ge=0, le=5)
    backoff: float = Field(default=0.2, ge=0)  # first retry delay; doubles each retry
    hmac_secret_env: str | None = Field(default=None, pattern=r"^[A-Z_][A-Z0-9_]*$")
    holding_phrase: str | None = "One moment while I check that."
    hold_after: float = Field(default=0.7, ge=0)  # seconds without a result before the phrase
    fallback: Fallback = Field(default_factory=Fallback)


class FlowFile(_Model):
    version: Literal[1] = 1
    greeting: str | None = None
    entry_flow: str | None = None
    tools: dict[str, Tool] = Field(default_factory=dict)
    flows: dict[str, Flow] = Field(default_factory=dict)
