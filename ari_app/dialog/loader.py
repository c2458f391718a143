"""Load flow files into a FlowSet, reporting every problem at once.

Each problem names the file, the key path (``flows.reschedule.steps[3].tool``) and what is
wrong. Structural problems come from the pydantic models in ``flows.py``; the semantic ones
(undefined slots/tools/steps, unreachable steps, loops with no way out) are checked here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import ValidationError

from ari_app.dialog.flows import STEP_KINDS, Flow, FlowFile, Goto, Tool
from ari_app.dialog.graph import step_graph
from ari_app.dialog.templates import TemplateError, root_names

BUILTIN_NAMES = {"caller"}  # always available in templates: {caller.number}


class FlowError(Exception):
    """One or more problems in flow files; ``problems`` lists them all."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid flows:\n" + "\n".join(f"  {p}" for p in problems))


@dataclass
class FlowSet:
    flows: dict[str, Flow] = field(default_factory=dict)
    tools: dict[str, Tool] = field(default_factory=dict)
    greeting: str = "Thanks for calling. How can I help you today?"
    entry_flow: str | None = None
    sources: dict[str, str] = field(default_factory=dict)  # flow/tool name -> file
    step_ids: dict[str, dict[str, int]] = field(default_factory=dict)  # flow -> id -> index

    def step_index(self, flow: str, step_id: str) -> int:
        return self.step_ids[flow][step_id]


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    prev: Any = None
    for i, part in enumerate(loc):
        # pydantic adds the discriminator tag after a step index and branch names in unions.
        if isinstance(part, str) and prev is not None and isinstance(prev, int) and part in STEP_KINDS:
            if i >= 2 and loc[i - 2] == "steps":
                prev = part
                continue
        if isinstance(part, str) and ("[" in part or part in ("Goto", "str")):
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part).rstrip("_")
        prev = part
    return out or "(top level)"


def _validation_problems(err: ValidationError, origin: str) -> list[str]:
    seen, problems = set(), []
    for e in err.errors():
        path = _loc(tuple(e["loc"]))
        if e["type"] == "extra_forbidden":
            msg = f"{origin}: {path}: unknown key (check the spelling)"
        elif e["type"] == "missing":
            msg = f"{origin}: {path}: required key is missing"
        else:
            msg = f"{origin}: {path}: {e['msg']} (got {e.get('input')!r})"
        if msg not in seen:
            seen.add(msg)
            problems.append(msg)
    return problems


def _read(path: Path) -> tuple[FlowFile | None, list[str]]:
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        return None, [f"{path}: file does not exist"]
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        return None, [f"{path}: not valid YAML{where}: {getattr(e, 'problem', e)}"]
    if not isinstance(raw, dict):
        return None, [
            f"{path}: must hold a mapping with 'flows:' (and optionally 'tools:'), not {type(raw).__name__}"
        ]
    try:
        return FlowFile.model_validate(raw), []
    except ValidationError as e:
        return None, _validation_problems(e, str(path))


def _check_template(text: str | None, known: set[str], where: str, problems: list[str]) -> None:
    if not text:
        return
    try:
        unknown = root_names(text) - known
    except TemplateError as e:
        problems.append(f"{where}: {e}")
        return
    for name in sorted(unknown):
        problems.append(
            f"{where}: template uses undefined name {name!r} (slots/results: {', '.join(sorted(known))})"
        )


def _check_flow(name: str, flow: Flow, fs: FlowSet, origin: str) -> list[str]:
    problems: list[str] = []
    base = f"{origin}: flows.{name}"
    ids: dict[str, int] = {}
    for i, step in enumerate(flow.steps):
        if step.id:
            if step.id in ids:
                problems.append(f"{base}.steps[{i}].id: duplicate step id {step.id!r}")
            ids[step.id] = i
    fs.step_ids[name] = ids
    results = {s.result or s.call for s in flow.steps if s.kind == "call"}
    known = set(flow.slots) | set(flow.inputs) | results | BUILTIN_NAMES

    def target(t: str | None, where: str) -> None:
        if t is not None and t != "end" and t not in ids:
            problems.append(f"{where}: unknown step {t!r} (step ids: {', '.join(sorted(ids)) or 'none'})")

    for sname, slot in flow.slots.items():
        where = f"{base}.slots.{sname}"
        if isinstance(slot.on_failure, Goto):
            target(slot.on_failure.goto, f"{where}.on_failure.goto")
        for key, path in (("choices_from", slot.choices_from), ("differs_from", slot.differs_from)):
            if path and path.split(".")[0] not in results:
                problems.append(f"{where}.{key}: {path!r} does not start with a tool result name")
        if slot.differs_from and slot.type != "date":
            problems.append(f"{where}.differs_from: only a date slot can be told what to differ from")
        if slot.validation and slot.validation.regex:
            try:
                re.compile(slot.validation.regex)
            except re.error as e:
                problems.append(f"{where}.validation.regex: not a valid regular expression: {e}")
        for digit in (slot.dtmf.menu or {}) if slot.dtmf else {}:
            if not re.fullmatch(r"[0-9*#]", digit):
                problems.append(f"{where}.dtmf.menu: key {digit!r} is not a single key (0-9, *, #)")
        for i, text in enumerate([slot.prompt, *slot.reprompts]):
            _check_template(text, known, f"{where}.{'prompt' if i == 0 else f'reprompts[{i - 1}]'}", problems)

    for i, step in enumerate(flow.steps):
        where = f"{base}.steps[{i}]"
        target(step.next, f"{where}.next")
        for s in step.reset:
            if s not in flow.slots:
                problems.append(f"{where}.reset: undefined slot {s!r}")
        if step.kind == "collect" and step.collect not in flow.slots:
            problems.append(
                f"{where}.collect: undefined slot {step.collect!r} (slots: {', '.join(flow.slots)})"
            )
        elif step.kind == "say":
            _check_template(step.say, known, f"{where}.say", problems)
        elif step.kind == "confirm":
            _check_template(step.confirm, known, f"{where}.confirm", problems)
            for s in step.change:
                if s not in flow.slots:
                    problems.append(f"{where}.change: undefined slot {s!r}")
        elif step.kind == "call":
            tool = fs.tools.get(step.call)
            if tool is None:
                problems.append(
                    f"{where}.call: unknown tool {step.call!r} (tools: {', '.join(fs.tools) or 'none'})"
                )
            else:
                props = tool.args_schema.get("properties")
                if isinstance(props, dict) and tool.args_schema.get("additionalProperties") is False:
                    for arg in step.args:
                        if arg not in props:
                            problems.append(f"{where}.args.{arg}: not an argument of tool {step.call!r}")
            for arg, value in step.args.items():
                if isinstance(value, str):
                    _check_template(value, known, f"{where}.args.{arg}", problems)
            if isinstance(step.on_failure, Goto):
                target(step.on_failure.goto, f"{where}.on_failure.goto")
        elif step.kind == "branch":
            for j, cond in enumerate(step.branch):
                if cond.when.split(".")[0].split("[")[0] not in known:
                    problems.append(f"{where}.branch[{j}].when: undefined name {cond.when!r}")
                target(cond.goto, f"{where}.branch[{j}].goto")
            target(step.else_, f"{where}.else")
        elif step.kind == "transfer":
            _check_template(step.transfer.summary, known, f"{where}.transfer.summary", problems)
        elif step.kind == "end":
            _check_template(step.end, known, f"{where}.end", problems)
        elif step.kind == "menu":
            _check_template(step.menu.prompt, known, f"{where}.menu.prompt", problems)
            for digit, opt in step.menu.options.items():
                owhere = f"{where}.menu.options.{digit}"
                if not re.fullmatch(r"[0-9*#]", str(digit)):
                    problems.append(f"{owhere}: menu keys are single keys (0-9, *, #)")
                chosen = [k for k in ("flow", "goto", "transfer", "say") if getattr(opt, k)]
                if len(chosen) != 1:
                    problems.append(f"{owhere}: give exactly one of flow, goto, transfer, say")
                if opt.flow and opt.flow not in fs.flows:
                    problems.append(f"{owhere}.flow: unknown flow {opt.flow!r}")
                target(opt.goto, f"{owhere}.goto")

    if problems:
        return problems  # the graph checks need valid targets
    graph = step_graph(flow, ids, fs.tools)
    for i in sorted(graph.unreachable()):
        problems.append(f"{base}.steps[{i}]: unreachable (no step leads here)")
    for i in sorted(graph.trapped()):
        problems.append(f"{base}.steps[{i}]: part of a loop with no way out (no path reaches an end)")
    return problems


def load_flows(paths: list[str | Path] | str | Path) -> FlowSet:
    """Read, merge and check flow files; raise FlowError listing every problem."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    files: list[Path] = []
    for p in map(Path, paths):
        files.extend(sorted(p.glob("*.yaml")) + sorted(p.glob("*.yml")) if p.is_dir() else [p])
    if not files:
        raise FlowError([f"no flow files found in {', '.join(map(str, paths))}"])
    fs, problems = FlowSet(), []
    parsed: list[tuple[Path, FlowFile]] = []
    for path in files:
        ff, errs = _read(path)
        problems += errs
        if ff is None:
            continue
        parsed.append((path, ff))
        for kind, items in (("tools", ff.tools), ("flows", ff.flows)):
            target = fs.tools if kind == "tools" else fs.flows
            for name, item in items.items():
                if name in target:
                    problems.append(f"{path}: {kind}.{name}: already defined in {fs.sources[kind + name]}")
                target[name] = item  # type: ignore[index]
                fs.sources[kind + name] = str(path)
        if ff.greeting:
            fs.greeting = ff.greeting
        if ff.entry_flow:
            fs.entry_flow = ff.entry_flow
    for path, ff in parsed:
        for name, tool in ff.tools.items():
            try:
                Draft202012Validator.check_schema(tool.args_schema)
            except SchemaError as e:
                problems.append(f"{path}: tools.{name}.args_schema: not a valid JSON schema: {e.message}")
        if ff.entry_flow and ff.entry_flow not in fs.flows:
            problems.append(f"{path}: entry_flow: unknown flow {ff.entry_flow!r}")
        for name, flow in ff.flows.items():
            problems += _check_flow(name, flow, fs, str(path))
    if problems:
        raise FlowError(problems)
    return fs


def check_flows(paths: list[str | Path]) -> list[str]:
    """For ``ari-app flows check``: the problems found (empty list when the files are fine)."""
    try:
        load_flows(paths)
    except FlowError as e:
        return e.problems
    return []
