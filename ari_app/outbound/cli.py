"""outbound: ``ari-app campaign ...`` and ``ari-app dnc ...`` — start, watch and steer campaigns.

Why the CLI only talks to Redis: the active agent instance dials (see ``runner``); these
commands load the campaign, change its status, and read its progress and results, so they work
from any machine that reaches Redis, and Ctrl-C on ``run`` never stops a campaign.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ari_app.cli import ConfigOpt, friendly, settings
from ari_app.config import Settings
from ari_app.outbound.errors import CampaignError
from ari_app.session.cipher import CipherUnavailable, RecordCipher

T = TypeVar("T")
campaign_app = typer.Typer(help="Outbound campaigns (reminders, notifications) on the same flows.")
dnc_app = typer.Typer(help="The do-not-call list every campaign checks before dialling.")
console = Console(stderr=True)
FINAL_STATUSES = ("done", "paused", "cancelled")


def _redis_run(s: Settings, fn: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``fn(redis)`` against the configured Redis; unreachable Redis is one clear error."""
    from ari_app.session.resilient import ResilientRedis
    from ari_app.session.store import SessionStoreUnavailable

    async def go() -> T:
        conn = ResilientRedis(s.redis, s.session)
        try:
            await conn.connect()
        except SessionStoreUnavailable as e:
            raise typer.Exit(_fail(str(e))) from None
        try:
            return await fn(conn.client)
        finally:
            await conn.close()

    return asyncio.run(go())


def _fail(msg: str) -> int:
    console.print(f"[bold red]error:[/] {escape(msg)}", soft_wrap=True)
    return 2


def _campaigns(redis: Any, s: Settings) -> Any:
    from ari_app.outbound.registry import Campaigns

    return Campaigns(redis, s.session.key_prefix, RecordCipher(s.session))


def known_flows(flow_paths: list[Path]) -> dict[str, list[str]]:
    from ari_app.dialog.loader import load_flows

    return {name: list(f.inputs) for name, f in load_flows(flow_paths).flows.items()}


def run(s: Settings, path: Path, flow_paths: list[Path], wait: bool) -> None:
    from ari_app.outbound.registry import prepare

    # A bad flow, campaign or contacts file fails before Redis is touched.
    ready = prepare(path, known_flows(flow_paths))

    async def start(redis: Any) -> Any:
        c = _campaigns(redis, s)
        started = await c.start(ready)
        for e in started.errors:
            console.print(f"[yellow]skipped[/] {e}", soft_wrap=True)
        console.print(f"campaign [bold]{started.spec.name}[/]: {started.added} contacts added, "
                      f"{started.updated} already known (their state kept), flow {started.spec.flow}")  # fmt: skip
        from ari_app.calls.standby import active_key

        if await redis.get(active_key(s.session.key_prefix, s.ari.app)) is None:
            console.print("[yellow]no agent instance is active: dialling starts when `ari-app serve` runs[/]")
        if wait:
            await _watch(c, started.spec.name)
        return started

    _redis_run(s, start)


async def _watch(c: Any, name: str) -> None:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(name, total=None)
        while True:
            st = await c.status(name)
            total = sum(st.counts.values())
            bar.update(task, total=total, completed=total - st.remaining,
                       description=f"{name} [{st.status}] {_outcomes(st.outcomes)}")  # fmt: skip
            if st.status in FINAL_STATUSES:
                break
            await asyncio.sleep(1.0)
    console.print(f"{name}: {st.status}{' - ' + st.reason if st.reason else ''}")


def _outcomes(outcomes: dict[str, int]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(outcomes.items()))


@campaign_app.command("run")
@friendly
def campaign_run(
    file: Annotated[Path, typer.Argument(help="campaign file (YAML or JSON)")],
    flows: Annotated[list[Path] | None, typer.Option("--flows", help="flow files/dirs")] = None,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="start it and return")] = False,
    config: ConfigOpt = None,
) -> None:
    """Start (or add contacts to) a campaign; shows its progress until it is done or paused."""
    from ari_app.service import DEFAULT_FLOWS

    run(settings(config), file, list(flows or DEFAULT_FLOWS), wait=not no_wait)


@campaign_app.command("status")
@friendly
def campaign_status(
    name: Annotated[str | None, typer.Argument(help="campaign name (all when left out)")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    config: ConfigOpt = None,
) -> None:
    """A campaign's status, contact counts and outcomes."""
    s = settings(config)

    async def go(redis: Any) -> list[Any]:
        c = _campaigns(redis, s)
        return [await c.status(n) for n in ([name] if name else await c.names())]

    statuses = _redis_run(s, go)
    if as_json:
        print(json.dumps([asdict(st) for st in statuses], indent=2))
        return
    for st in statuses:
        print(f"{st.name}: {st.status}{' (' + st.reason + ')' if st.reason else ''}; contacts "
              f"{_outcomes(st.counts)}; outcomes {_outcomes(st.outcomes) or 'none yet'}")  # fmt: skip


def control(action: str) -> Callable[..., None]:
    @friendly
    def command(name: Annotated[str, typer.Argument(help="campaign name")], config: ConfigOpt = None) -> None:
        s = settings(config)
        st = _redis_run(s, lambda redis: _campaigns(redis, s).control(name, action))
        print(f"{st.name}: {st.status}")

    command.__doc__ = {"pause": "Stop dialling new contacts (calls in progress go on).",
                       "resume": "Dial again after a pause.",
                       "cancel": "End the campaign for good (calls in progress go on)."}[action]  # fmt: skip
    return command


for action in ("pause", "resume", "cancel"):
    campaign_app.command(action)(control(action))


@campaign_app.command("results")
@friendly
def campaign_results(
    name: Annotated[str, typer.Argument(help="campaign name")],
    out: Annotated[Path | None, typer.Option("--out", help="write CSV here (default: stdout)")] = None,
    config: ConfigOpt = None,
) -> None:
    """Per-contact results as CSV: outcome, attempts, flow result, duration, session."""
    from ari_app.outbound.results import write_results_csv

    s = settings(config)

    async def go(redis: Any) -> list[Any]:
        return await (await _campaigns(redis, s).state(name)).results()

    results = _redis_run(s, go)
    link = _transcript_link(s)
    if out is None:
        write_results_csv(results, sys.stdout, transcript_link=link)
    else:
        with out.open("w", newline="") as f:
            n = write_results_csv(results, f, transcript_link=link)
        console.print(f"{n} contacts written to {out}")


@dnc_app.command("add")
@friendly
def dnc_add(number: str, reason: str = "added by an operator", config: ConfigOpt = None) -> None:
    """Never call this number (any campaign)."""
    s = settings(config)
    added = _redis_run(s, lambda redis: _dnc(redis, s).add(number, reason))
    print("added" if added else "already on the list")


@dnc_app.command("import")
@friendly
def dnc_import(file: Path, config: ConfigOpt = None) -> None:
    """Add every number of a file (one per line, or a CSV with a number column)."""
    s = settings(config)
    res = _redis_run(s, lambda redis: _dnc(redis, s).import_file(file))
    for e in res.errors:
        console.print(f"[yellow]skipped[/] {e}", soft_wrap=True)
    print(f"{res.added} numbers added")


def _dnc(redis: Any, s: Settings) -> Any:
    from ari_app.outbound.dnc import DncList
    from ari_app.outbound.state import CampaignKeys

    try:
        return DncList(redis, CampaignKeys(s.session.key_prefix), RecordCipher(s.session))
    except CipherUnavailable as e:
        raise CampaignError(str(e)) from None


def _transcript_link(s: Settings) -> Callable[[str], str]:
    base = f"http://{s.web.host}:{s.web.port}/agent/"
    return lambda session_id: base + session_id
