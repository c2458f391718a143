"""Configuration rules within a section (port ranges) and the error mapping every CLI command
uses: a wrong value is one message naming the keys, never a traceback."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ari_app.config import ConfigError, MediaSettings, StackSettings, load_settings
from ari_app.errors import user_error
from ari_app.media import PortPool


def test_inverted_rtp_range_names_both_keys_and_values() -> None:
    with pytest.raises(ConfigError) as e:
        load_settings(media={"rtp_port_min": 21000, "rtp_port_max": 20000})
    msg = str(e.value)
    assert "media.rtp_port_min = 21000 is above media.rtp_port_max = 20000" in msg
    assert "{" not in msg  # the section's input is not echoed as a dict


def test_rtp_range_without_an_even_port_is_refused() -> None:
    with pytest.raises(
        ValidationError, match=r"media.rtp_port_min..media.rtp_port_max = 20001..20001 holds no even"
    ):
        MediaSettings(rtp_port_min=20001, rtp_port_max=20001)


@pytest.mark.parametrize(("lo", "hi"), [(20000, 20000), (20001, 20002), (1024, 65535)])
def test_rtp_ranges_with_an_even_port_are_fine(lo: int, hi: int) -> None:
    media = MediaSettings(rtp_port_min=lo, rtp_port_max=hi)
    assert PortPool.from_settings(media).capacity >= 1  # what the settings accept, the pool accepts


def test_inverted_asterisk_rtp_range_is_refused() -> None:
    with pytest.raises(
        ValidationError, match=r"stack.asterisk_rtp_min = 12000 is above stack.asterisk_rtp_max = 10999"
    ):
        StackSettings(asterisk_rtp_min=12000)


def test_range_from_a_config_file_names_the_file(tmp_path) -> None:
    cfg = tmp_path / "iva.yaml"
    cfg.write_text("media:\n  rtp_port_min: 30000\n")
    with pytest.raises(
        ConfigError, match=rf"media.rtp_port_min = 30000 is above .* \({cfg} or environment\)"
    ):
        load_settings(cfg)


def test_user_error_maps_what_an_admin_can_cause() -> None:
    with pytest.raises(ValidationError) as e:
        MediaSettings(rtp_port_min=30000)
    assert "media.rtp_port_min = 30000" in (user_error(e.value) or "")
    assert user_error(FileNotFoundError(2, "No such file or directory", "x.yaml")) == (
        "cannot read x.yaml: No such file or directory"
    )
    assert user_error(RuntimeError("our bug")) is None  # keeps its traceback
    assert user_error(FileNotFoundError("no filename: not about a path the user gave")) is None
