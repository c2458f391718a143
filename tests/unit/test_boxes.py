"""Box k's settings and config (ari_app/boxes.py): its own ports, run dir and systemname."""

from __future__ import annotations

from pathlib import Path

import pytest

from ari_app import boxes, stack
from ari_app.config import Settings
from ari_app.rootfs import StackError


def test_box_settings_move_every_port_and_the_run_dir(tmp_path: Path) -> None:
    s = Settings(stack={"run_dir": str(tmp_path)})
    b = boxes.box_settings(s, 1).stack
    assert (b.sip_port, b.ari_port) == (s.stack.sip_port + 100, s.stack.ari_port + 1)
    assert b.asterisk_rtp_min > s.stack.asterisk_rtp_max  # RTP ranges never overlap
    assert b.run_dir == tmp_path / "boxes" / "box1" and b.system_name == "box1"
    # What the boxes share: the workers' balancer and the lab phones.
    assert (b.workers_port, b.agent_port, b.redis_port) == (
        s.stack.workers_port,
        s.stack.agent_port,
        s.stack.redis_port,
    )


def test_rendered_config_names_the_box(tmp_path: Path) -> None:
    s = Settings(stack={"run_dir": str(tmp_path)})
    stack.render_config(boxes.box_settings(s, 2), tmp_path / "b2")
    stack.render_config(s, tmp_path / "b0")
    assert "systemname = box2" in (tmp_path / "b2/asterisk.conf").read_text()
    assert "\nsystemname" not in (tmp_path / "b0/asterisk.conf").read_text()  # one box: unset
    assert f"bind = 127.0.0.1:{s.stack.sip_port + 200}" in (tmp_path / "b2/pjsip.conf").read_text()
    assert "@@" not in (tmp_path / "b2/asterisk.conf").read_text()


@pytest.mark.parametrize("k", [0, boxes.MAX_BOXES + 1])
def test_box_index_out_of_range_is_named(k: int) -> None:
    with pytest.raises(StackError, match=f"box index {k}"):
        boxes.box_settings(Settings(), k)


def test_a_box_needs_the_stack_first(tmp_path: Path) -> None:
    with pytest.raises(StackError, match="start the stack first"):
        boxes.up_box(Settings(stack={"run_dir": str(tmp_path)}), 1)
