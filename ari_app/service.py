"""The running agent: loads the engines once, connects to Redis and ARI, serves the agent web
page, and hands every new call to a VoiceAgent. Also adopts calls left behind by a crashed or
restarted instance (takeover)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from ari_app import stage_cpu
from ari_app.agent.metrics import AgentMetrics
from ari_app.agent.voice import (
    FAILURE_APOLOGY,
    NO_ANSWER_PROMPT,
    RESUME_APOLOGY,
    STILL_TRANSFERRING,
    TRANSFER_FAILED_PROMPT,
    AgentDeps,
    VoiceAgent,
)
from ari_app.ari.models import Channel
from ari_app.calls.manager import CallManager
from ari_app.config import Settings
from ari_app.dialog.steps import NO_AGENTS_GOODBYE
from ari_app.tasks import supervised

log = structlog.get_logger(__name__)
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FLOWS = [REPO_ROOT / "flows"]
# The agent's own fixed lines (not in any flow): cached and warmed like flow prompts.
AGENT_FIXED_PROMPTS = (
    RESUME_APOLOGY, NO_ANSWER_PROMPT, TRANSFER_FAILED_PROMPT, NO_AGENTS_GOODBYE, FAILURE_APOLOGY,
    f"{RESUME_APOLOGY} {STILL_TRANSFERRING}",
    "Let me connect you with someone who can help.", "Sorry, I didn't get that.",
    "Sorry, I didn't hear anything.", "Are you still there?", "Got it.", "Thanks for calling. Goodbye.",
)  # fmt: skip
PROMPT_KEYS = {"prompt", "reprompts", "say", "greeting", "holding_phrase", "message", "text"}


def fixed_prompts(flowset: Any) -> list[str]:
    """Prompts without template fields: synthesised once at start-up so callers never wait on them."""
    found: set[str] = set()

    def walk(v: Any, key: str = "") -> None:
        if hasattr(v, "model_dump"):
            v = v.model_dump()
        if isinstance(v, dict):
            for k, x in v.items():
                walk(x, str(k))
        elif isinstance(v, list):
            for x in v:
                walk(x, key)
        elif isinstance(v, str) and key in PROMPT_KEYS and "{" not in v and v.strip():
            found.add(v)

    walk(flowset.flows)
    found.add(flowset.greeting)
    found.update(AGENT_FIXED_PROMPTS)
    return sorted(found)


def load_agent_deps(settings: Settings, flow_paths: list[Path], store: Any = None) -> AgentDeps:
    """Load every model and the flows (blocking: seconds). Errors name the package or flow file."""
    from ari_app.dialog.engine import DialogEngine
    from ari_app.dialog.loader import load_flows
    from ari_app.dialog.nlu import build_understanding
    from ari_app.dialog.tools import ToolClient
    from ari_app.speech.asr import make_asr
    from ari_app.speech.tts import make_tts
    from ari_app.speech.vad import make_vad

    t0 = time.monotonic()
    flowset = load_flows([str(p) for p in flow_paths])
    llm = None
    if settings.dialog.llm.enabled:  # optional: only asked where the engine would say no-match
        from ari_app.dialog.llm import LlmCommander

        llm = LlmCommander(settings.dialog.llm)
        log.info("agent.llm", base_url=settings.dialog.llm.base_url, model=settings.dialog.llm.model)
    before = stage_cpu.thread_ids()
    understanding = build_understanding(settings)
    stage_cpu.tag_new_threads("nlu_engine_threads", before)
    engine = DialogEngine(flowset, understanding, ToolClient(), settings.dialog.policy, llm=llm)
    sp = settings.speech
    make_vad(sp.vad)  # fail now, not on the first call, if the VAD package is missing
    asr = make_asr(sp.asr, sp.cache_dir)
    before = stage_cpu.thread_ids()
    tts = make_tts(sp.tts, sp.cache_dir if sp.prompt_cache else None, sp.prompt_cache_max_mb)
    stage_cpu.tag_new_threads("tts_engine_threads", before)
    log.info("agent.loaded", seconds=round(time.monotonic() - t0, 2), flows=sorted(flowset.flows))
    return AgentDeps(engine=engine, vad_factory=lambda: make_vad(sp.vad), asr=asr, tts=tts,
                     settings=settings, store=store, prompts=fixed_prompts(flowset),
                     metrics=AgentMetrics())  # fmt: skip


async def warm_prompts(deps: AgentDeps) -> int:
    warm = getattr(deps.tts, "warm", None)
    if warm is None:
        return 0
    t0 = time.monotonic()
    n = await warm(deps.prompts)
    pruned = deps.tts.prune() if hasattr(deps.tts, "prune") else 0
    log.info("agent.prompts_warmed", prompts=n, pruned=pruned, seconds=round(time.monotonic() - t0, 2))
    return n


def preflight(flow_paths: list[Path]) -> None:
    """What an admin can get wrong, checked before Redis or ARI is contacted: the flow files (the
    loader only, ~50 ms; models load later). Raises loader.FlowError naming every file and key."""
    from ari_app.dialog.loader import load_flows

    load_flows([str(p) for p in flow_paths])


class Service:
    def __init__(
        self, settings: Settings, flow_paths: list[Path] | None = None, *, with_store: bool = True
    ) -> None:
        self.settings = settings
        self.flow_paths = flow_paths or DEFAULT_FLOWS
        self.instance_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.with_store = with_store
        self.store: Any = None
        self.deps: AgentDeps | None = None
        self.manager: CallManager | None = None
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []  # supervised: sweeper, janitor, active/standby
        self.active: Any = None  # ActiveInstance: which instance holds the ARI app's events
        self.workers: Any = None  # WorkerCalls, in ari.mode = outbound
        # Asterisk gives an ARI app's events to the last websocket that connected: once another
        # instance connected, this one hears no hang-ups or DTMF and must not adopt calls.
        self.replaced = False

    async def start(self) -> None:
        preflight(self.flow_paths)
        s = self.settings
        stage_cpu.mark_loop_thread()
        if self.with_store:
            from ari_app.session import SessionStore

            self.store = SessionStore(s.redis, self.instance_id, s.session)
            await self.store.connect()
            self.store.leases.start()
        if s.ari.mode == "outbound":  # /readyz answers (503) while the models load
            await self._start_worker_web()
        self.deps = await asyncio.to_thread(load_agent_deps, s, self.flow_paths, self.store)
        await warm_prompts(self.deps)
        claim = self.store.claim_channel if self.store is not None else None
        from ari_app.outbound.answering import AnsweringConversation

        d = self.deps  # calls we place first learn who answered; every other call is the agent's
        conversation = AnsweringConversation(VoiceAgent(d), d.vad_factory, d.asr, d.tts)
        self.manager = CallManager(s, conversation, on_orphan=self._adopt, claim=claim)
        if self.workers is not None:
            self.workers.manager = self.manager  # ready now: websockets are accepted
            if self.store is not None:
                from ari_app.calls.janitor import WORKER_ABANDON_AFTER_S, Janitor

                janitor = Janitor(self.manager, self.store, rest=self.workers.any_rest,
                                  abandon_after_s=WORKER_ABANDON_AFTER_S)  # fmt: skip
                self._tasks.append(supervised("janitor", janitor.run))
            log.info("agent.ready", mode="outbound", app=s.ari.outbound_app, port=s.web.port,
                     path=s.ari.worker_path, instance=self.instance_id)  # fmt: skip
            return
        self._watch_replacement()
        await self.manager.start()
        if self.store is not None:
            from ari_app.calls.janitor import Janitor
            from ari_app.calls.standby import ActiveInstance

            self.active = ActiveInstance(self.store.redis, self.store.keys, s.ari.app, self.instance_id,
                                         s.session.lease_ttl)  # fmt: skip
            await self.active.claim(force=True)  # we just connected: Asterisk routes the events to us
            await self._start_web()
            from ari_app.outbound.runner import CampaignRunner

            campaigns = CampaignRunner(s, self.manager, self.store, active=lambda: not self.replaced)
            self._tasks = [
                supervised("orphan-sweeper", self._sweep_orphans),
                supervised("janitor", Janitor(self.manager, self.store).run),
                supervised("active-or-standby", self._active_or_standby),
                supervised("campaigns", campaigns.run),
            ]
        log.info("agent.ready", app=s.ari.app, ari=s.ari.url, instance=self.instance_id)

    async def _start_worker_web(self) -> None:
        """ari.mode = outbound: Asterisk connects to us, one websocket per call (docs/scaling.md).
        Every worker is active: no instance lock, no standby; no HTTP route to Asterisk is
        needed (REST goes over each call's websocket), so the orphan sweeper and the campaign
        dialer, which use it, do not run here; the janitor sweeps over a live call's websocket. The web server (with /readyz and the
        websocket path) starts before the models load: not ready until they have."""
        from ari_app.calls.worker_calls import WorkerCalls

        self.workers = WorkerCalls(None, self.store, self.settings.ari)
        self.workers.server.ready = lambda: all(self.readiness().values())
        await self._start_web()
        if self.store is not None:
            self._tasks.append(supervised("redis-check", self._check_redis))

    async def _check_redis(self) -> None:
        """A worker with no call may not touch Redis for a long time, and /readyz must say when
        Redis is gone (the balancer then stops sending calls): ping it every second. A failed
        ping marks the store unhealthy; it reconnects (and says healthy) by itself."""
        from ari_app.session.resilient import RedisUnavailable

        while True:
            await asyncio.sleep(1.0)
            if self.store.healthy:
                with contextlib.suppress(RedisUnavailable, TimeoutError):
                    await asyncio.wait_for(self.store.redis.read(lambda r: r.ping()), 2.0)

    async def drain(self) -> None:
        """SIGTERM in outbound mode: readiness false at once, new websockets refused, the calls
        up run to their end (at most ari.drain_timeout), then stop() closes what is left."""
        if self.workers is not None:
            await self.workers.drain(self.settings.ari.drain_timeout)

    async def stop(self) -> None:
        if self.workers is not None:
            self.workers.server.draining = True
        for t in self._tasks:
            t.cancel()
        if self.manager is not None:
            # With Redis, live calls survive a restart: the next instance adopts them.
            await self.manager.stop(hand_over=self.store is not None)
        if self.workers is not None:
            await self.workers.close()
        if self._runner is not None:
            await self._runner.cleanup()
        tools = getattr(getattr(self.deps, "engine", None), "tool_client", None)
        if tools is not None:
            await tools.close()
        if self.store is not None:
            await self.store.close()

    async def _start_web(self) -> None:
        from ari_app.web.app import create_web_app

        flows = self.deps.engine.flowset.flows if self.deps is not None else {}
        app = create_web_app(self.store, self.settings.web, self.readiness,
                             campaign_flows=lambda: {n: list(f.inputs) for n, f in flows.items()})  # fmt: skip
        if self.workers is not None:
            self.workers.server.add_routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.web.host, self.settings.web.port)
        await site.start()

    def _watch_replacement(self) -> None:
        assert self.manager is not None
        forward = self.manager.events.on_unrouted

        async def on_unrouted(ev: Any) -> None:
            if ev.type == "ApplicationReplaced" and not self.replaced:
                self.replaced = True
                log.error("ari.app_replaced", app=self.settings.ari.app, instance=self.instance_id,
                          detail="another instance connected to this ARI app and now receives its "
                          "events; this one adopts no more calls")  # fmt: skip
            if forward is not None:
                await forward(ev)

        self.manager.events.on_unrouted = on_unrouted

    def readiness(self) -> dict[str, bool]:
        """/readyz: this instance can take calls now (a standby is alive but not ready; a
        draining worker neither)."""
        if self.workers is not None:
            return {
                "models_loaded": self.manager is not None,
                "redis": self.store is not None and self.store.healthy,
                **self.workers.readiness(),
            }
        events = self.manager.events if self.manager is not None else None
        return {
            "ari_connected": events is not None and events.connected.is_set(),
            "active": not self.replaced,
            "redis": self.store is not None and self.store.healthy,
            "models_loaded": self.deps is not None,
        }

    async def _active_or_standby(self) -> None:
        """Active: keep the app's key, and on ApplicationReplaced give our calls to the new
        instance (we would be deaf to their hang-ups and keys) and become a standby. Standby:
        when the active instance's key lapses (it died), connect again and adopt its calls."""
        assert self.manager is not None and self.active is not None
        events = self.manager.events
        beat = self.settings.session.heartbeat_interval
        vacant = 0
        while True:
            if not self.replaced:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(events.replaced.wait(), beat)
                if events.replaced.is_set():
                    self._hand_over_calls()
                    await self.active.release()
                else:
                    await self.active.claim()
                continue
            await asyncio.sleep(beat)
            vacant = vacant + 1 if await self.active.holder() is None else 0
            if vacant >= 2 and await self.active.take_free():  # the active instance is gone
                vacant = 0
                self.replaced = False
                events.reconnect()
                log.warning("standby.activated", instance=self.instance_id, app=self.settings.ari.app)

    def _hand_over_calls(self) -> None:
        assert self.manager is not None
        self.replaced = True
        n = len(self.manager.calls)
        for call in list(self.manager.calls.values()):
            call.detach()
        for task in list(self.manager.tasks.values()):
            task.cancel()
        log.warning("calls.handed_over", calls=n, instance=self.instance_id, now="standby")

    # ------------------------------------------------------------------ takeover
    async def _sweep_orphans(self) -> None:
        """Calls whose owner died keep sitting in Stasis: look for them every few seconds."""
        assert self.manager is not None
        while True:
            try:
                channels = [] if self.replaced else await self.manager.ari.list_channels()
                for ch in channels:
                    if (
                        ch.in_app(self.settings.ari.app)
                        and not ch.id.startswith("iva-")
                        and not self.manager.is_ours(ch.id)
                    ):
                        await self._adopt(ch)
            except Exception as e:
                log.warning("takeover.sweep_failed", error=str(e))
            await asyncio.sleep(2.0)

    async def _adopt(self, ch: Channel) -> None:
        from ari_app.calls.takeover import adopt_call

        assert self.manager is not None
        if not self.replaced:
            await adopt_call(self.manager, self.store, ch)


async def run_forever(service: Service) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    import signal

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    from ari_app.ari.errors import AriConnectionError
    from ari_app.session import SessionStoreUnavailable

    try:
        await service.start()
    except (SessionStoreUnavailable, AriConnectionError) as e:  # a setup problem, not our bug
        await service.stop()
        raise SystemExit(f"error: {e}") from None
    try:
        await stop.wait()
        if service.workers is not None:  # a worker drains: its calls end before it exits
            stop.clear()  # a second SIGTERM during the drain stops at once
            drain, again = asyncio.create_task(service.drain()), asyncio.create_task(stop.wait())
            await asyncio.wait({drain, again}, return_when=asyncio.FIRST_COMPLETED)
            drain.cancel()
            again.cancel()
    finally:
        await service.stop()
