"""Past capacity a new caller is turned away gracefully on the real stack, and the call already
up keeps going: the busy message is really played and the line is hung up by us."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from ari_app.calls.call import Call
from ari_app.calls.manager import CallManager
from ari_app.config import Settings
from ari_app.testcaller.caller import Silence, place_call

pytestmark = pytest.mark.stack


async def test_a_call_past_capacity_hears_busy_and_the_call_up_is_untouched(
    asterisk, settings: Settings
) -> None:
    full = settings.model_copy(update={"capacity": settings.capacity.model_copy(update={"max_calls": 1})})
    first_done = asyncio.Event()

    async def hold(call: Call) -> None:  # the call already up: keeps its media until we say
        await first_done.wait()

    manager = CallManager(full, hold)
    await manager.start()
    try:
        first = asyncio.create_task(
            place_call(settings.stack.extension, [Silence(6.0)], listen_s=0, sip_port=settings.stack.sip_port)
        )
        for _ in range(100):
            if manager.calls:
                break
            await asyncio.sleep(0.05)
        assert len(manager.calls) == 1
        second = await place_call(
            settings.stack.extension, [Silence(8.0)], listen_s=0, sip_port=settings.stack.sip_port
        )
        assert second.sip.answered is not None, "the overflow caller was not answered"
        assert second.sip.ended_by == "remote", "we must hang up the overflow caller, not leave them"
        heard = second.received_pcm()
        voiced = np.abs(heard.astype(np.int32)).mean() if heard.size else 0
        assert voiced > 50, "the overflow caller heard nothing (no busy message)"
        assert len(manager.calls) == 1, "the first call must still be up"
        first_done.set()
        report = await first
        assert report.sip.answered is not None
        assert report.sip.ended is not None and second.sip.ended is not None
        assert report.sip.ended > second.sip.ended, (
            "the call already up stayed up while the other was turned away"
        )
    finally:
        first_done.set()
        await manager.stop()
    assert not manager.ports.in_use
