"""Configuration rules that span sections: no shipped secret outside the lab."""

from __future__ import annotations

import pytest

from ari_app.config import ConfigError, load_settings


def test_default_secrets_are_refused_off_loopback() -> None:
    with pytest.raises(ConfigError) as e:
        load_settings(
            ari={"url": "http://10.0.0.2:8088/ari"}, web={"host": "0.0.0.0", "token": "s3cr3t-token"}
        )
    msg = str(e.value)
    assert "ari.password is the shipped default" in msg and "web.metrics_token" in msg
    assert "s3cr3t-token" not in msg  # the error never echoes configuration values
    assert load_settings().ari.url.startswith("http://127.0.0.1")  # the lab on loopback is fine
