"""CPU accounting by stage: thread CPU, not wall time, and nothing counted twice."""

from __future__ import annotations

import asyncio
import time

from ari_app import stage_cpu


def _burn(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_measured_charges_cpu_not_waiting() -> None:
    before = stage_cpu.snapshot().get("test_burn", 0.0)
    with stage_cpu.measured("test_burn"):
        _burn(0.05)
        time.sleep(0.1)  # waiting costs no CPU and is not charged
    charged = stage_cpu.snapshot()["test_burn"] - before
    assert 0.04 <= charged < 0.09


async def test_a_loop_section_is_not_charged_for_loop_stages_that_ran_inside_it() -> None:
    stage_cpu.mark_loop_thread()
    before = stage_cpu.snapshot()

    async def other_coroutine() -> None:
        with stage_cpu.measured("vad"):  # a loop stage, e.g. a frame arriving mid-dialogue
            _burn(0.05)

    with stage_cpu.loop_section("dialogue"):
        _burn(0.02)
        await asyncio.gather(other_coroutine(), asyncio.sleep(0.05))
    after = stage_cpu.snapshot()
    assert 0.04 <= after["vad"] - before.get("vad", 0.0) < 0.08
    assert 0.015 <= after["dialogue"] - before.get("dialogue", 0.0) < 0.045
    assert after["process"] > before["process"]
    assert "event_loop_other" in after


def test_an_engines_own_threads_are_charged_to_its_stage() -> None:
    import threading

    before = stage_cpu.thread_ids()
    done = threading.Event()

    def engine_pool() -> None:  # stands in for a native pool (CTranslate2, onnxruntime)
        _burn(0.05)
        done.wait(5)

    t = threading.Thread(target=engine_pool)
    t.start()
    stage_cpu.tag_new_threads("test_engine_threads", before)
    try:
        time.sleep(0.12)
        assert stage_cpu.snapshot().get("test_engine_threads", 0.0) >= 0.03
    finally:
        done.set()
        t.join()
