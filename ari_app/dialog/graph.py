"""The step graph of one flow: where each step can lead. Shared by the loader's reachability /
loop checks and the engine's "what comes next" logic so both agree."""

from __future__ import annotations

from dataclasses import dataclass

from ari_app.dialog.flows import Flow, Goto, Tool

EXIT = -1  # leaving the flow: end, transfer, or falling off the last step


def resolve(target: str | None, ids: dict[str, int]) -> int | None:
    if target is None:
        return None
    return EXIT if target == "end" else ids[target]


def following(flow: Flow, ids: dict[str, int], i: int) -> int:
    """Where a step goes when it simply finishes: its ``next``, else the following step."""
    nxt = resolve(flow.steps[i].next, ids)
    if nxt is not None:
        return nxt
    return i + 1 if i + 1 < len(flow.steps) else EXIT


def _failure_edge(action: object, flow: Flow, ids: dict[str, int], i: int) -> int:
    if isinstance(action, Goto):
        return ids[action.goto]
    if action in ("transfer", "end"):
        return EXIT
    return following(flow, ids, i)


@dataclass
class StepGraph:
    edges: dict[int, set[int]]

    def reachable(self) -> set[int]:
        seen, todo = {0}, [0]
        while todo:
            for j in self.edges[todo.pop()]:
                if j != EXIT and j not in seen:
                    seen.add(j)
                    todo.append(j)
        return seen

    def unreachable(self) -> set[int]:
        return set(self.edges) - self.reachable()

    def trapped(self) -> set[int]:
        """Reachable steps from which no path leaves the flow."""
        can_exit = {i for i, out in self.edges.items() if EXIT in out}
        changed = True
        while changed:
            changed = False
            for i, out in self.edges.items():
                if i not in can_exit and out & can_exit:
                    can_exit.add(i)
                    changed = True
        return self.reachable() - can_exit


def step_graph(flow: Flow, ids: dict[str, int], tools: dict[str, Tool]) -> StepGraph:
    edges: dict[int, set[int]] = {}
    for i, step in enumerate(flow.steps):
        out: set[int] = set()
        if step.kind in ("collect", "say", "confirm"):
            out.add(following(flow, ids, i))
            if step.kind == "collect":
                out.add(_failure_edge(flow.slots[step.collect].on_failure, flow, ids, i))
            if step.kind == "confirm":  # "no" goes back to the collect step of a changed slot
                out |= {
                    j for j, s in enumerate(flow.steps) if s.kind == "collect" and s.collect in step.change
                }
        elif step.kind == "call":
            out.add(following(flow, ids, i))
            tool = tools.get(step.call)
            action = step.on_failure or (tool.fallback.then if tool else "transfer")
            out.add(_failure_edge(action, flow, ids, i))
        elif step.kind == "branch":
            out |= {ids[c.goto] for c in step.branch}
            otherwise = resolve(step.else_, ids)
            out.add(otherwise if otherwise is not None else following(flow, ids, i))
        elif step.kind in ("transfer", "end"):
            out.add(EXIT)
        elif step.kind == "menu":
            out.add(EXIT)  # too many failed tries -> transfer
            for opt in step.menu.options.values():
                if opt.goto:
                    out.add(ids[opt.goto])
                elif opt.say:
                    out.add(following(flow, ids, i))
        edges[i] = out
    return StepGraph(edges)
