"""calls: where a caller goes when something inside their call broke.

Why: an engine error, a stalled prompt, a dead listener or a plain bug must never leave the
caller in silence or hang up on them. The caller hears an apology (ours if our voice still
works, Asterisk's own recording if not) and then goes to ``calls.on_failure``: by default the
human queue, through the dialplan, so nothing of ours is needed any more once they are there.
"""

from __future__ import annotations

import contextlib

import structlog
from prometheus_client import Counter

from ari_app.ari import AriClient
from ari_app.ari.errors import AriConnectionError, AriError
from ari_app.calls.call import OWN_PREFIX, Call
from ari_app.config import Settings
from ari_app.transfer.warm import TransferRequest, blind_transfer

log = structlog.get_logger(__name__)

# Asterisk's own recordings ("I'm sorry", "One moment please"): they need none of our engines.
FALLBACK_SOUNDS = "sound:sorry,sound:one-moment-please"
FALLBACK_SOUNDS_MAX_S = 6.0
FAILED_OVER = Counter(
    "iva_calls_failed_over_total", "Calls sent to the failure fallback after a fault", ["fault", "action"]
)
FALLBACK_SUMMARY = (
    "The virtual agent had a technical problem during this call; please take it from the start."
)


async def fail_over(call: Call, fault: str, *, apologised: bool) -> None:
    """Apologise (unless already done) and send the caller to the failure target. Never raises:
    if even that fails the caller is hung up cleanly, which is all that is left to do."""
    if call.hung_up.is_set() or call.handed_off:
        return
    s = call.settings
    action = s.calls.on_failure
    FAILED_OVER.labels(fault, action).inc()
    call.log.error("call.failed_over", fault=fault, action=action)
    call.end_reason = "failed_over"
    try:
        if not apologised:
            await call.ari.play_to_end(call.channel.id, FALLBACK_SOUNDS, FALLBACK_SOUNDS_MAX_S)
        if action == "hangup" or call.hung_up.is_set():
            return  # the call's teardown hangs up
        req = TransferRequest(reason="technical problem", queue=s.transfer.queue, summary=FALLBACK_SUMMARY,
                              timeout=s.transfer.timeout)  # fmt: skip
        if action == "queue":
            result = await blind_transfer(call, s.transfer.queue, req, context="ari-app-queue")
        else:
            result = await blind_transfer(
                call, s.calls.failure_extension, req, context=s.calls.failure_context
            )
        if result.outcome != "connected":
            call.log.error("call.fallback_failed", action=action, detail=result.detail)
    except Exception as e:  # the caller is still hung up by the teardown: never left in Stasis
        call.log.error("call.fallback_failed", action=action, error=str(e))


async def send_orphan_to_person(ari: AriClient, channel_id: str, settings: Settings, fault: str) -> None:
    """A caller nobody here can drive (a worker reached by Asterisk's reconnect cannot adopt the
    call: its record unreachable, its lease never freed): take them out of the dead driver's
    bridge, apologise with Asterisk's own recordings and send them to ``calls.on_failure``.
    Never raises; if even that fails the caller is hung up rather than left in silence."""
    action = settings.calls.on_failure
    FAILED_OVER.labels(fault, action).inc()
    log.error("call.orphan_failed_over", channel=channel_id, fault=fault, action=action)
    try:
        for bridge in await ari.list_bridges():  # the dead driver's: its media leg goes with it
            if channel_id in bridge.channels and bridge.id.startswith(OWN_PREFIX):
                for other in bridge.channels:
                    if other != channel_id and other.startswith(OWN_PREFIX):
                        await ari.hangup(other)
                await ari.destroy_bridge(bridge.id)
        await ari.play_to_end(channel_id, FALLBACK_SOUNDS, FALLBACK_SOUNDS_MAX_S)
        if action == "queue":
            await ari.continue_in_dialplan(channel_id, "ari-app-queue", settings.transfer.queue, 1)
        elif action == "dialplan":
            await ari.continue_in_dialplan(
                channel_id, settings.calls.failure_context, settings.calls.failure_extension, 1
            )
        else:
            await ari.hangup(channel_id)
    except (AriError, AriConnectionError, OSError, TimeoutError) as e:
        log.error("call.fallback_failed", channel=channel_id, action=action, error=str(e))
        with contextlib.suppress(AriError, AriConnectionError, OSError, TimeoutError):
            await ari.hangup(channel_id)
