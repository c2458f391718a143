"""The ``ari-app`` command line. Every failure an admin can cause prints one clear message and
exits non-zero; tracebacks are reserved for our own bugs."""

from __future__ import annotations

import json
import sys
from functools import wraps
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ari_app import stack as stack_mod
from ari_app.config import ConfigError, Settings, load_settings

app = typer.Typer(help="A local intelligent virtual agent for Asterisk.", no_args_is_help=True)
stack_app = typer.Typer(help="The embedded dev stack: Asterisk 22 (chroot) + Redis on loopback.")
asterisk_app = typer.Typer(help="Asterisk configuration we ship.")
app.add_typer(stack_app, name="stack")
app.add_typer(asterisk_app, name="asterisk")
console = Console(stderr=True)

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML config file", envvar="ARI_APP_CONFIG")
]


def fail(msg: str) -> typer.Exit:
    console.print(f"[bold red]error:[/] {msg}")
    return typer.Exit(2)


def friendly(fn):
    """Turn our expected error types into one-line messages."""

    @wraps(fn)
    def wrapper(*a, **kw):
        try:
            return fn(*a, **kw)
        except (ConfigError, stack_mod.StackError) as e:
            raise fail(str(e)) from None

    return wrapper


def settings(config: Path | None) -> Settings:
    try:
        return load_settings(config)
    except ConfigError as e:
        raise fail(str(e)) from None


@stack_app.command("build")
@friendly
def stack_build(config: ConfigOpt = None, force: bool = False) -> None:
    """Build (or verify) the cached Asterisk rootfs."""
    s = settings(config)
    tar = stack_mod.build_rootfs(s, force=force)
    stack_mod.unpack_rootfs(s)
    console.print(f"rootfs ready: {tar}")


@stack_app.command("up")
@friendly
def stack_up(config: ConfigOpt = None) -> None:
    """Start Asterisk and Redis on loopback (harmless when already up)."""
    s = settings(config)
    stack_mod.up(s)
    _print_status(stack_mod.status(s))


@stack_app.command("down")
@friendly
def stack_down(config: ConfigOpt = None) -> None:
    """Stop exactly the processes `stack up` started."""
    stopped = stack_mod.down(settings(config))
    console.print(f"stopped pids {stopped}" if stopped else "nothing was running")


@stack_app.command("status")
@friendly
def stack_status(config: ConfigOpt = None, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Show what runs where."""
    st = stack_mod.status(settings(config))
    if as_json:
        print(json.dumps(st, indent=2))
    else:
        _print_status(st)
    if not st["running"]:
        raise typer.Exit(1)


@stack_app.command("cli")
@friendly
def stack_cli(command: str, config: ConfigOpt = None) -> None:
    """Run an Asterisk CLI command in the embedded Asterisk, e.g. 'core show channels'."""
    print(stack_mod.asterisk_cli(settings(config), command), end="")


@asterisk_app.command("render")
@friendly
def asterisk_render(dest: Path, config: ConfigOpt = None) -> None:
    """Write our asterisk/ and dialplan/ config, filled in from the settings, into DEST."""
    for p in stack_mod.render_config(settings(config), dest):
        console.print(f"wrote {p}")


def _print_status(st: dict) -> None:
    if not st.get("running"):
        console.print("stack: [red]not running[/]")
        return
    t = Table(show_header=False, box=None)
    for k in ("ari_url", "ari_app", "sip", "call_extension", "agent_phone", "redis_url"):
        t.add_row(k, str(st[k]))
    t.add_row("asterisk pid", str(st["asterisk"]["pid"]))
    t.add_row("redis pid", str(st["redis"]["pid"]))
    Console().print(t)


def main() -> None:  # pragma: no cover - console entry
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
