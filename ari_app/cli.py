"""The ``ari-app`` command line. Every failure an admin can cause prints one clear message and
exits non-zero; tracebacks are reserved for our own bugs."""

from __future__ import annotations

import json
import os
import sys
from functools import wraps
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ari_app import rootfs
from ari_app import stack as stack_mod
from ari_app.config import ConfigError, Settings, load_settings
from ari_app.errors import user_error

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
    # escape: flow and config messages hold key paths like steps[3]; soft_wrap: grep-able lines
    console.print(f"[bold red]error:[/] {escape(msg)}", soft_wrap=True)
    return typer.Exit(2)


def friendly(fn):
    """Turn the errors an admin can cause (config, flows, files, the stack) into one message and
    exit code 2; anything else is our bug and keeps its traceback."""

    @wraps(fn)
    def wrapper(*a, **kw):
        try:
            return fn(*a, **kw)
        except stack_mod.StackError as e:
            raise fail(str(e)) from None
        except Exception as e:
            msg = user_error(e)
            if msg is None:
                raise
            raise fail(msg) from None

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
    tar = rootfs.build_rootfs(s, force=force)
    rootfs.unpack_rootfs(s)
    console.print(f"rootfs ready: {tar}")
    _print_versions(rootfs.versions_report(s))


@stack_app.command("up")
@friendly
def stack_up(
    config: ConfigOpt = None,
    workers: Annotated[int, typer.Option("--workers", min=0, max=32, help="also start N agent workers "
                       "(ari.mode = outbound) behind HAProxy on stack.workers_port")] = 0,
    boxes: Annotated[int, typer.Option("--boxes", min=1, max=9, help="Asterisk boxes sharing the Redis "
                     "and the workers (box k: SIP port stack.sip_port + 100 k, systemname box<k>)")] = 1,
    sentinel: Annotated[bool, typer.Option("--sentinel", help="also start Redis Sentinel (a primary, a "
                        "replica, three sentinels on stack.sentinel_port_base + 0..4); the workers use it")] = False,
) -> None:  # fmt: skip
    """Start Asterisk and Redis on loopback (harmless when already up)."""
    s = settings(config)
    stack_mod.up(s)
    redis_env: dict[str, str] = {}
    if sentinel:
        from ari_app import sentinel_stack

        sentinel_stack.up(s)
        redis_env = sentinel_stack.redis_env(s)
    if boxes > 1:
        from ari_app import boxes as boxes_mod

        for k in range(1, boxes):
            boxes_mod.up_box(s, k)
    if workers:
        from ari_app import workers_stack

        workers_stack.up(s, workers, env=redis_env)
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


def _print_versions(report: dict) -> None:
    """The rootfs's Asterisk package versions, and a warning when they are not the green ones."""
    if not report["built"]:
        console.print(report["message"])
        return
    t = Table(show_header=False, box=None)
    green = "[green]the green versions[/]" if report["matches_green"] else "[yellow]not the green versions[/]"
    t.add_row("asterisk rootfs", green)
    for name, version in report["packages"].items():
        t.add_row(f"  {name}", escape(version))
    Console().print(t)
    if report["warning"]:
        console.print(f"[bold yellow]warning:[/] {escape(report['warning'])}", soft_wrap=True)  # cp: one line


def _print_status(st: dict) -> None:
    if not st.get("running"):
        console.print("stack: [red]not running[/]")
    else:
        t = Table(show_header=False, box=None)
        for k in ("ari_url", "ari_app", "sip", "call_extension", "agent_phone", "redis_url"):
            t.add_row(k, str(st[k]))
        t.add_row("asterisk pid", str(st["asterisk"]["pid"]))
        t.add_row("redis pid", str(st["redis"]["pid"]))
        if w := st.get("workers"):
            t.add_row("workers", f"HAProxy on {w['listen']} (pid {w['haproxy']['pid']}), call "
                      f"{st.get('workers_extension', '')}")  # fmt: skip
            for x in w["workers"]:
                t.add_row("", f"pid {x['pid']} port {x['port']} {'ready' if x['ready'] else 'NOT ready'}")
        for b in st.get("boxes", []):
            t.add_row(f"box {b['index']}", f"sip udp:{b['sip']}, ARI {b['ari_url']}, pid {b['pid']}")
        if sn := st.get("sentinel"):
            alive = sum(n["alive"] for n in sn["nodes"].values())
            t.add_row("sentinel", f"master {sn['master']!r} at {sn['primary'] or 'NONE'}, sentinels "
                      f"{','.join(sn['sentinels'])}, {alive}/{len(sn['nodes'])} nodes up")  # fmt: skip
        Console().print(t)
    _print_versions(st["versions"])


def main() -> None:  # pragma: no cover - console entry
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


# ---------------------------------------------------------------------- the agent
FlowsArg = Annotated[list[Path] | None, typer.Argument(help="flow files or folders (default: flows/)")]


@app.command("serve")
@friendly
def serve(config: ConfigOpt = None, flows: FlowsArg = None) -> None:
    """Run the agent against the configured Asterisk (ARI) and Redis until stopped."""
    import asyncio

    from ari_app.logs import configure_logging
    from ari_app.service import Service, preflight, run_forever

    s = settings(config)
    service = Service(s, flows)
    preflight(service.flow_paths)  # a bad flow file is reported before Redis or ARI is contacted
    configure_logging(s.log_level)
    asyncio.run(run_forever(service))


@app.command("demo")
@friendly
def demo(config: ConfigOpt = None, no_stay: Annotated[bool, typer.Option("--no-stay")] = False) -> None:
    """Embedded stack + demo backend + agent, one demo call printed, then wait for softphone calls."""
    import asyncio

    from ari_app.demo import run_demo
    from ari_app.logs import configure_logging
    from ari_app.service import DEFAULT_FLOWS, preflight

    s = settings(config)
    preflight(DEFAULT_FLOWS)  # before the stack is started
    configure_logging(os.environ.get("ARI_APP_DEMO_LOG", "warning"))
    raise typer.Exit(asyncio.run(run_demo(s, stay_up=not no_stay)))


@app.command("call")
@friendly
def call(
    sentence: Annotated[str | None, typer.Argument(help="what the caller says (synthesised)")] = None,
    wav: Annotated[Path | None, typer.Option("--wav", help="play this WAV file instead")] = None,
    target: Annotated[
        str | None, typer.Option("--target", help="number to dial (default: stack.extension)")
    ] = None,
    listen: Annotated[float, typer.Option("--listen", help="seconds to keep listening at the end")] = 8.0,
    config: ConfigOpt = None,
) -> None:
    """Place a real SIP test call against the running agent and print what the agent said."""
    import asyncio

    from ari_app.testcaller.cli_call import CallFailed, run_call

    s = settings(config)
    try:
        transcript = asyncio.run(run_call(s, sentence, wav, target=target, listen_s=listen))
    except CallFailed as e:
        raise fail(str(e)) from None
    print(transcript.format())


@app.command("chat")
@friendly
def chat(flows: FlowsArg = None, config: ConfigOpt = None) -> None:
    """Text simulator: type as the caller (#1234 for keys), see replies, slots and decisions."""
    from ari_app.dialog.chat import run_chat
    from ari_app.service import DEFAULT_FLOWS

    run_chat([str(p) for p in (flows or DEFAULT_FLOWS)])


flows_app = typer.Typer(help="Dialogue flows.")
app.add_typer(flows_app, name="flows")


@flows_app.command("check")
def flows_check(flows: FlowsArg = None) -> None:
    """Validate flow files; every problem is reported at once with file and key path."""
    from ari_app.dialog.loader import check_flows
    from ari_app.service import DEFAULT_FLOWS

    problems = check_flows([str(p) for p in (flows or DEFAULT_FLOWS)])
    for p in problems:
        console.print(f"[red]✗[/] {p}")
    if problems:
        raise typer.Exit(1)
    console.print("[green]flows OK[/]")


from ari_app.outbound.cli import campaign_app, dnc_app  # noqa: E402 - it uses the helpers above

app.add_typer(campaign_app, name="campaign")
app.add_typer(dnc_app, name="dnc")

models_app = typer.Typer(help="Packaged speech and NLU models.")
app.add_typer(models_app, name="models")


@models_app.command("check")
@friendly
def models_check(config: ConfigOpt = None) -> None:
    """Load every configured model and print how long it takes."""
    from ari_app.speech.models_check import check_models

    reports = check_models(settings(config))
    t = Table(title="models")
    for col in ("kind", "engine", "ok", "load s", "run s", "detail"):
        t.add_column(col)
    for r in reports:
        ok = "yes" if r.ok else "[red]no[/]"
        t.add_row(
            r.kind,
            r.engine,
            ok,
            f"{r.load_s:.2f}" if r.load_s else "",
            f"{r.run_s:.3f}" if r.run_s else "",
            r.detail,
        )
    Console().print(t)
    if not all(r.ok for r in reports):
        raise typer.Exit(1)


speech_app = typer.Typer(help="Speech engines as a service, for workers with no local models.")
app.add_typer(speech_app, name="speech")


@speech_app.command("serve")
@friendly
def speech_serve(
    host: Annotated[str, typer.Option("--host", help="address to bind (default loopback)")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8765,
    config: ConfigOpt = None,
) -> None:
    """Serve our embedded Whisper and TTS on OpenAI's /v1/audio/transcriptions and /v1/audio/speech."""
    from ari_app.logs import configure_logging
    from ari_app.speech_server.app import run

    s = settings(config)
    configure_logging(s.log_level)
    if host not in ("127.0.0.1", "::1", "localhost") and not s.speech.server.api_key.get_secret_value():
        console.print(f"[bold yellow]warning:[/] serving on {escape(host)} with no speech.server.api_key: "
                      "anyone who can reach it can use it", soft_wrap=True)  # fmt: skip
    console.print(f"speech server on http://{escape(host)}:{port}/v1 (loading models...)")
    run(s, host, port)
