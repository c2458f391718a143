"""Warm and blind transfer to people, with the call's context attached.

Warm transfer, in order:
1. the caller is moved to a holding bridge with music on hold;
2. the agent leg is originated through the dialplan (``Local/<queue>@ari-app-queue/n`` so the
   admin's Queue() strategy applies; or ``Local/<endpoint>@ari-app-dial/n``) carrying the context
   as inherited channel variables, which the predial gosub turns into SIP headers;
3. when the agent answers, our existing media leg is moved into a bridge with the agent and a
   whispered summary is played to them only;
4. the caller joins the agent, our media leg leaves.
No answer / agent hangs up during the whisper / no such queue -> the caller goes back to the
conversation. Caller hangs up while on hold (or the call is cancelled) -> the agent leg is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

import structlog

from ari_app.ari import AriError
from ari_app.ari.models import Event
from ari_app.calls.call import OWN_PREFIX, Call
from ari_app.web import links

log = structlog.get_logger(__name__)

Outcome = Literal["connected", "no_answer", "agent_hung_up", "caller_hung_up", "failed"]
_HEADER_SAFE = re.compile(r"[^A-Za-z0-9 _.,:;@+/#=?!-]")
# dialplan/ari_app.conf hangs the Local leg up with cause 3 (no route to destination) when the
# queue does not exist: a configuration error, reported as "failed" rather than "no_answer".
NO_ROUTE_CAUSE = 3


@dataclass
class TransferRequest:
    reason: str
    queue: str | None = "support"
    endpoint: str | None = None
    summary: str = ""
    intent: str = ""
    context: dict[str, str] = field(default_factory=dict)  # non-sensitive key slots only
    timeout: float = 30.0


@dataclass
class TransferResult:
    outcome: Outcome
    agent_channel_id: str | None = None
    wait_s: float = 0.0
    detail: str = ""


def header_value(text: str, limit: int = 200) -> str:
    """SIP header values must be one short, safe line."""
    return _HEADER_SAFE.sub("", text.replace("\n", " "))[:limit]


def context_variables(call: Call, req: TransferRequest) -> dict[str, str]:
    # "__" makes them inherit through Local;2 and Queue() onto the agent's channel.
    vars_ = {
        "__ARI_APP_SESSION": call.info.session_id,
        "__ARI_APP_CALLER": header_value(call.info.caller_number),
        "__ARI_APP_INTENT": header_value(req.intent),
        "__ARI_APP_REASON": header_value(req.reason),
        "__ARI_APP_SUMMARY": header_value(req.summary),
        "ARI_APP_QUEUE_TIMEOUT": str(int(req.timeout)),
        "ARI_APP_DIAL_TIMEOUT": str(int(req.timeout)),
    }
    for k, v in req.context.items():
        vars_[f"__ARI_APP_CTX_{re.sub(r'[^A-Z0-9_]', '_', k.upper())}"] = header_value(str(v))
    web = call.settings.web
    if web.token is not None:  # the agent's screen-pop: this call's page, for one shift
        vars_["__ARI_APP_LINK"] = links.sign(
            call.info.session_id, web.token.get_secret_value(), web.link_ttl_s
        )
    return vars_


async def warm_transfer(
    call: Call,
    req: TransferRequest,
    whisper: Callable[[], Awaitable[None]] | None = None,
) -> TransferResult:
    """Run a warm transfer. On any outcome but 'connected' the caller is back in our bridge."""
    events, sid = call.events, call.info.session_id
    hold_id = f"{OWN_PREFIX}hold-{sid}"
    agent_br = f"{OWN_PREFIX}agentbr-{sid}"
    agent_id = f"{OWN_PREFIX}agent-{sid}"
    if req.queue:
        endpoint = f"Local/{req.queue}@ari-app-queue/n"
    elif req.endpoint:
        endpoint = f"Local/{req.endpoint}@ari-app-dial/n"
    else:
        return TransferResult("failed", detail="transfer request names neither a queue nor an endpoint")
    agent_q = events.subscribe(agent_id)
    answered = events.expect("StasisStart", agent_id)
    try:
        return await _run(call, req, endpoint, agent_id, agent_q, answered, hold_id, agent_br, whisper)
    except asyncio.CancelledError:
        # The call is going away (caller hung up, shutdown): never leave the agent ringing.
        await asyncio.shield(_abandon(call, agent_id, hold_id, agent_br))
        raise
    finally:
        if call.agent_channel_id != agent_id:
            events.unsubscribe(agent_id)


async def _run(
    call: Call,
    req: TransferRequest,
    endpoint: str,
    agent_id: str,
    agent_q: asyncio.Queue[Event],
    answered: asyncio.Future[Event],
    hold_id: str,
    agent_br: str,
    whisper: Callable[[], Awaitable[None]] | None,
) -> TransferResult:
    ari, sid = call.ari, call.info.session_id
    t0 = time.monotonic()
    try:
        # 1. caller on hold
        await ari.create_bridge(hold_id, type="holding", name=f"iva hold {sid}")
        await ari.remove_from_bridge(call.bridge_id or "", call.channel.id)
        await ari.add_to_bridge(hold_id, call.channel.id)
        await ari.bridge_moh(hold_id)
        # 2. agent leg through the dialplan
        try:
            await ari.originate(
                endpoint,
                channel_id=agent_id,
                app_args=f"agent,{sid}",
                caller_id=f'"{header_value(call.info.caller_name or call.info.caller_number, 40)}" '
                f"<{header_value(call.info.caller_number, 40)}>",
                timeout=int(req.timeout) + 5,
                variables=context_variables(call, req),
                # the Local chain takes the caller's codec (else slin192, transcoded at every hop)
                originator=call.channel.id,
            )
        except AriError as e:
            log.warning("transfer.originate_failed", session=sid, endpoint=endpoint, error=str(e))
            await _return_caller(call, hold_id)
            return TransferResult("failed", detail=f"cannot reach {endpoint}: {e.message}")
        # Queue() gives up after req.timeout itself; the margin only covers a dialplan that does not.
        outcome = await _wait_answer(call, answered, agent_q, agent_id, req.timeout + 0.5)
        if outcome != "answered":
            await _cancel_agent(call, agent_id)
            if outcome == "caller_hung_up":
                await _destroy(call, hold_id)
                return TransferResult("caller_hung_up", wait_s=time.monotonic() - t0)
            await _return_caller(call, hold_id)
            if outcome == "failed":
                log.warning("transfer.no_route", session=sid, endpoint=endpoint)
                return TransferResult("failed", wait_s=time.monotonic() - t0,
                                      detail=f"{endpoint}: no such queue or endpoint in the dialplan")  # fmt: skip
            return TransferResult("no_answer", wait_s=time.monotonic() - t0)
        # 3. whisper to the agent over our own media leg
        await ari.create_bridge(agent_br, type="mixing", name=f"iva agent {sid}")
        await ari.add_to_bridge(agent_br, agent_id)
        if whisper is not None and call.media_channel_id:
            await ari.remove_from_bridge(call.bridge_id or "", call.media_channel_id)
            await ari.add_to_bridge(agent_br, call.media_channel_id)
            whisper_task = asyncio.create_task(whisper())
            gone = asyncio.create_task(until_gone(agent_q, agent_id))
            await asyncio.wait({whisper_task, gone}, return_when=asyncio.FIRST_COMPLETED)
            if gone.done():
                whisper_task.cancel()
                await _destroy(call, agent_br)
                if call.media_channel_id:
                    await ari.add_to_bridge(call.bridge_id or "", call.media_channel_id)
                await _return_caller(call, hold_id)
                return TransferResult("agent_hung_up", agent_id, time.monotonic() - t0)
            gone.cancel()
        # 4. our media leg leaves, then caller and agent are connected. In this order the bridge
        # never holds three channels: a softmix -> simple_bridge switch as the third one leaves
        # intermittently left the agent deaf (Local channel behind Queue, Asterisk 22).
        if call.media_channel_id:
            await ari.hangup(call.media_channel_id)
            call.media_channel_id = None
        await ari.remove_from_bridge(hold_id, call.channel.id)
        await ari.add_to_bridge(agent_br, call.channel.id)
        call.agent_channel_id = agent_id  # from here on the call's teardown owns the agent leg
        call.agent_events = agent_q
        await _destroy(call, hold_id)
        if call.bridge_id:
            await ari.destroy_bridge(call.bridge_id)
        call.bridge_id = agent_br
        log.info("transfer.connected", session=sid, wait_s=round(time.monotonic() - t0, 2))
        return TransferResult("connected", agent_id, time.monotonic() - t0)
    except AriError as e:
        log.warning("transfer.failed", session=sid, error=str(e))
        if call.hung_up.is_set():
            await _cancel_agent(call, agent_id)
            return TransferResult("caller_hung_up", detail=str(e))
        await _cancel_agent(call, agent_id)
        with contextlib.suppress(AriError):
            await _return_caller(call, hold_id)
        return TransferResult("failed", detail=str(e))


async def _abandon(call: Call, agent_id: str, hold_id: str, agent_br: str) -> None:
    await _destroy(call, hold_id)
    if call.agent_channel_id != agent_id:  # once connected, the call's teardown releases these
        await _cancel_agent(call, agent_id)
        await _destroy(call, agent_br)


async def _wait_answer(
    call: Call, answered: asyncio.Future, agent_q: asyncio.Queue, agent_id: str, timeout: float
) -> str:
    gone = asyncio.create_task(until_gone(agent_q, agent_id))
    hung = asyncio.create_task(call.hung_up.wait())
    try:
        done, _ = await asyncio.wait(
            {answered, gone, hung}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        gone.cancel()
        hung.cancel()
    if hung in done or call.hung_up.is_set():
        return "caller_hung_up"
    if answered in done:
        return "answered"
    if gone in done and gone.result().cause == NO_ROUTE_CAUSE:
        return "failed"
    return "no_answer"


async def until_gone(q: asyncio.Queue, channel_id: str) -> Event:
    """Wait until this channel hangs up or leaves our app; returns that event."""
    while True:
        ev = await q.get()
        if (
            ev.channel is not None
            and ev.channel.id == channel_id
            and ev.type
            in (
                "ChannelDestroyed",
                "StasisEnd",
                "ChannelHangupRequest",
            )
        ):
            return ev


async def _cancel_agent(call: Call, agent_id: str) -> None:
    with contextlib.suppress(Exception):
        await call.ari.hangup(agent_id)


async def _destroy(call: Call, bridge_id: str) -> None:
    with contextlib.suppress(Exception):
        await call.ari.destroy_bridge(bridge_id)


async def _return_caller(call: Call, hold_id: str) -> None:
    """Back to the conversation: caller leaves hold and rejoins our media bridge."""
    with contextlib.suppress(AriError):
        await call.ari.remove_from_bridge(hold_id, call.channel.id)
    await _destroy(call, hold_id)
    if call.bridge_id and not call.hung_up.is_set():
        await call.ari.add_to_bridge(call.bridge_id, call.channel.id)


async def blind_transfer(
    call: Call, target: str, req: TransferRequest, *, context: str = "ari-app-dial"
) -> TransferResult:
    """Send the caller to ``target`` in ``context`` (an endpoint through ari-app-dial, a queue
    through ari-app-queue, an admin's own context) with the context variables, and let go of it."""
    try:
        for k, v in context_variables(call, req).items():
            await call.ari.set_variable(call.channel.id, k, v)
        call.handed_off = True
        await call.ari.continue_in_dialplan(call.channel.id, context, target, 1)
        return TransferResult("connected", detail=f"blind to {target}@{context}")
    except AriError as e:
        call.handed_off = False
        return TransferResult("failed", detail=str(e))
