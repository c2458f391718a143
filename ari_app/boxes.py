"""stack: more embedded Asterisk boxes beside the first, sharing its Redis and its worker pool.

A site with several Asterisk servers points every box's outbound ARI websocket at the same
HAProxy (docs/scaling.md). Here box ``k`` (1-based; the stack's own Asterisk is box 0) is a
second Asterisk process from its own copy of the rootfs under ``run_dir/boxes/box<k>``, with
its own SIP, ARI and RTP ports and its own ``systemname``: Asterisk prefixes uniqueids with it,
so two boxes never hand out the same channel id to the shared Redis (both would otherwise count
``<start time>.<n>`` from the same second). Workers need nothing per box: each call's REST
requests travel over that call's own websocket, to the box that sent it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ari_app import stack
from ari_app.config import Settings
from ari_app.rootfs import StackError, require_root

MAX_BOXES = 8
SIP_PORT_STEP = 100  # box k: SIP on stack.sip_port + 100 k (5160), clear of the lab phones' 5070-5082
RTP_PORT_STEP = 1000  # box k: RTP from stack.asterisk_rtp_min + 1000 k (11000-11999)


@dataclass
class BoxState:
    index: int
    pid: int
    sip: str
    ari_url: str
    rootfs: str


def box_settings(s: Settings, k: int) -> Settings:
    """The settings box ``k`` runs with: the stack's, with its own run dir, ports and name."""
    if not 1 <= k <= MAX_BOXES:
        raise StackError(f"box index {k} is out of range (1..{MAX_BOXES})")
    st = s.stack
    boxed = st.model_copy(update={
        "run_dir": st.run_dir / "boxes" / f"box{k}",
        "sip_port": st.sip_port + SIP_PORT_STEP * k,
        "ari_port": st.ari_port + k,
        "asterisk_rtp_min": st.asterisk_rtp_min + RTP_PORT_STEP * k,
        "asterisk_rtp_max": st.asterisk_rtp_max + RTP_PORT_STEP * k,
        "system_name": f"box{k}",
    })  # fmt: skip
    return s.model_copy(update={"stack": boxed})


def _state_file(bs: Settings) -> Path:
    return bs.stack.run_dir / "box.json"


def read_box(s: Settings, k: int) -> BoxState | None:
    try:
        return BoxState(**json.loads(_state_file(box_settings(s, k)).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def up_box(s: Settings, k: int) -> BoxState:
    """Start box ``k`` (idempotent) once the stack itself is up: it uses the stack's Redis."""
    if stack.read_state(s) is None:
        raise StackError("start the stack first (ari-app stack up): the boxes share its Redis")
    state = read_box(s, k)
    if state and stack._alive(state.pid):
        return state
    require_root("an embedded Asterisk box")
    bs = box_settings(s, k)
    for port, kind, what in stack._stack_ports(bs):
        if what != "Redis":
            stack._check_port_free(bs.stack.bind, port, kind, f"box {k} {what}")
    root, proc = stack.start_asterisk(bs)
    b = bs.stack.bind
    state = BoxState(
        k, proc.pid, f"{b}:{bs.stack.sip_port}", f"http://{b}:{bs.stack.ari_port}/ari", str(root)
    )
    _state_file(bs).write_text(json.dumps(asdict(state)))
    try:
        stack.wait_asterisk(bs, proc.pid)
    except StackError:
        down_box(s, k)
        raise
    return state


def down_box(s: Settings, k: int) -> list[int]:
    """Stop box ``k`` if it runs; the pids stopped."""
    bs = box_settings(s, k)
    state = read_box(s, k)
    stopped = [state.pid] if state and stack._alive(state.pid) else []
    if stopped:
        stack._stop(stopped)
    _state_file(bs).unlink(missing_ok=True)
    return stopped


def running_boxes(s: Settings) -> list[BoxState]:
    return [b for k in range(1, MAX_BOXES + 1) if (b := read_box(s, k)) and stack._alive(b.pid)]
