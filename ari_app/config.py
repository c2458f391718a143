"""All configuration in one typed place.

Sources, later wins: built-in defaults < YAML file (``--config`` or ``ARI_APP_CONFIG``) <
environment (``ARI_APP_<SECTION>__<KEY>``, e.g. ``ARI_APP_ARI__PASSWORD``).

Every validation problem is reported as ``section.key = value: what is wrong`` so an admin
never has to read a traceback.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlsplit, urlunsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from ari_app.dialog.nlu.settings import NluSettings
from ari_app.dialog.settings import DialogSettings
from ari_app.session.settings import SessionSettings
from ari_app.speech.settings import SpeechSettings
from ari_app.web.settings import WebSettings

CONFIG_ENV = "ARI_APP_CONFIG"
DEFAULT_ARI_PASSWORD = "change-me-ari"
DEFAULT_SOFTPHONE_PASSWORD = "change-me-softphone"
DEFAULT_WORKER_PASSWORD = "change-me-worker"


class ConfigError(Exception):
    """A configuration value is wrong; the message names the key and the value."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AriSettings(_Section):
    """How we reach Asterisk's REST interface."""

    url: str = "http://127.0.0.1:8088/ari"
    username: str = "ari-app"
    password: SecretStr = SecretStr(DEFAULT_ARI_PASSWORD)
    app: str = Field(default="ari-app", pattern=r"^[A-Za-z0-9_.-]+$")
    # Reconnect backoff for the events websocket (seconds).
    reconnect_min: float = Field(default=0.2, gt=0)
    reconnect_max: float = Field(default=5.0, gt=0)
    request_timeout: float = Field(default=5.0, gt=0)
    # inbound: we connect to Asterisk's /ari/events (one active instance per app, a standby).
    # outbound: we are a worker; Asterisk (22.5+, 21.10+, 20.15+) connects to us, one websocket
    # per call (websocket_client.conf + ari.conf), and REST for that call goes over that socket.
    # Every worker is active; see docs/scaling.md.
    mode: Literal["inbound", "outbound"] = "inbound"
    # outbound: the app Asterisk's ari.conf outbound_websocket entry serves (Stasis(<this>)).
    outbound_app: str = Field(default="ari-app-ws", pattern=r"^[A-Za-z0-9_.-]+$")
    # outbound: the path and the HTTP Basic credentials Asterisk must present (websocket_client.conf
    # username/password). A connection without them is refused with 401.
    worker_path: str = Field(default="/ari/ws", pattern=r"^/[A-Za-z0-9_./-]*$")
    worker_username: str = Field(default="ari-worker", pattern=r"^[A-Za-z0-9_.-]+$")
    worker_password: SecretStr = SecretStr(DEFAULT_WORKER_PASSWORD)
    # outbound: after SIGTERM, how long calls already up may run before the worker exits anyway
    # (their callers then go through the dialplan's fallback; see docs/scaling.md).
    drain_timeout: float = Field(default=600.0, ge=0)

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https:// (e.g. http://127.0.0.1:8088/ari)")
        return v.rstrip("/")

    @property
    def ws_url(self) -> str:
        return "ws" + self.url[len("http") :] + "/events"


REDIS_PASSWORD_FILE = "redis.password"
SESSION_KEY_FILE = "session.key"


def _loopback(host: str | None) -> bool:
    return host in ("127.0.0.1", "::1", "localhost") or bool(
        host and host.startswith("127.")
    )  # in stack.run_dir; written by the embedded stack


def embedded_secret(stack: StackSettings, name: str) -> str:
    """A secret of the embedded stack (its Redis password, the session encryption key):
    generated on first use, kept 0600 in its run dir; the stack and every process loading these
    settings use the same one."""
    path = stack.run_dir / name
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it just now
            return path.read_text().strip()
        with os.fdopen(fd, "w") as f:
            # A Fernet key is 32 random bytes, urlsafe-base64: also a fine password.
            f.write(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())
    return path.read_text().strip()


class RedisSettings(_Section):
    """One Redis (``url``), or a primary found through Redis Sentinel (docs/redis_sentinel.md)."""

    # Credentials go in the URL (redis://:password@host:port/0, or user:password@ for an ACL
    # user); it is redacted wherever it is printed. For the embedded stack the password it
    # generated is added automatically (see Settings._embedded_secrets).
    # With sentinels the URL still carries the data nodes' credentials, db and TLS (rediss://),
    # one place for the data password either way; its host:port is then not used (the sentinels
    # name the primary), e.g. redis://:PASSWORD@primary/0.
    url: str = "redis://127.0.0.1:6390/0"
    # "host:port" of each sentinel (three on separate machines, at least). Empty: use url alone,
    # as before. A list in YAML, JSON or "a:26379,b:26379" in ARI_APP_REDIS__SENTINELS.
    sentinels: Annotated[list[str], NoDecode] = Field(default_factory=list)  # NoDecode: _split parses
    # The name the sentinels monitor the primary under (`sentinel monitor <name> ...`).
    sentinel_master: str = Field(default="ari-app", pattern=r"^[A-Za-z0-9_.-]+$")
    # The sentinels' own password (their requirepass), when they have one. Not the data
    # password: sentinels and data nodes are separate servers, and may be run by other people.
    sentinel_password: SecretStr | None = None

    @field_validator("url")
    @classmethod
    def _redis_url(cls, v: str) -> str:
        if not v.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return v

    @field_validator("sentinels", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        if isinstance(v, str) and v.lstrip().startswith("["):
            return json.loads(v)  # JSON, the usual form of a list in the environment
        return [e for e in v.split(",") if e.strip()] if isinstance(v, str) else v

    @field_validator("sentinels")
    @classmethod
    def _host_port(cls, v: list[str]) -> list[str]:
        from ari_app.session.connect import parse_sentinel

        for n, entry in enumerate(v, 1):
            try:
                parse_sentinel(entry)
            except ValueError as e:
                raise ValueError(f"entry {n}: {e}") from None
        return [e.strip() for e in v]

    @model_validator(mode="after")
    def _sentinel_url(self) -> RedisSettings:
        if not self.sentinels:
            return self
        u = urlsplit(self.url)
        if u.scheme == "unix":
            raise ValueError("redis.url is a unix socket, but redis.sentinels name TCP primaries: "
                             "give redis://:PASSWORD@primary/0")  # fmt: skip
        # Our Redis always requires auth. Without credentials here the embedded stack's password
        # would be filled in (Settings._embedded_secrets), which is not the sentinels' primary's.
        if "@" not in u.netloc:
            raise ValueError("redis.url must carry the data nodes' password when redis.sentinels is set "
                             "(redis://:PASSWORD@primary/0; its host:port is not used)")  # fmt: skip
        return self


def _check_port_range(lo_key: str, hi_key: str, lo: int, hi: int, *, even: bool = False) -> None:
    """A min/max pair of UDP ports that is inverted, or holds no even port where RTP needs one, is
    refused when the settings load, naming both keys: not as a traceback once calls arrive."""
    if lo > hi:
        raise ValueError(f"{lo_key} = {lo} is above {hi_key} = {hi}: the port range is empty")
    if even and lo + lo % 2 > hi:
        raise ValueError(f"{lo_key}..{hi_key} = {lo}..{hi} holds no even port (RTP needs an even port)")


class MediaSettings(_Section):
    """Where our ExternalMedia RTP sockets live."""

    rtp_host: str = "127.0.0.1"
    rtp_port_min: int = Field(default=20000, ge=1024, le=65535)
    rtp_port_max: int = Field(default=20999, ge=1024, le=65535)
    format: Literal["ulaw", "alaw", "slin"] = "ulaw"

    @model_validator(mode="after")
    def _port_range(self) -> MediaSettings:
        _check_port_range(
            "media.rtp_port_min", "media.rtp_port_max", self.rtp_port_min, self.rtp_port_max, even=True
        )
        return self


class StackSettings(_Section):
    """The embedded development stack (Asterisk in a Debian sid chroot + a local redis-server)."""

    cache_dir: Path = Path(os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache"))) / "ari-app"
    run_dir: Path = Path(os.environ.get("XDG_STATE_HOME", str(Path.home() / ".local/state"))) / "ari-app"
    bind: str = "127.0.0.1"
    ari_port: int = Field(default=8088, ge=1, le=65535)
    sip_port: int = Field(default=5060, ge=1, le=65535)
    redis_port: int = Field(default=6390, ge=1, le=65535)
    asterisk_rtp_min: int = Field(default=10000, ge=1024, le=65535)
    asterisk_rtp_max: int = Field(default=10999, ge=1024, le=65535)
    agent_port: int = Field(default=5080, ge=1, le=65535)
    callee_port: int = Field(default=5082, ge=1, le=65535)  # test campaigns' callees (lab only)
    extension: str = Field(default="1000", pattern=r"^[0-9A-Za-z*#+]+$")
    # The extension that goes to the workers (ari.mode = outbound) through Asterisk's outbound
    # websocket, and the port Asterisk connects to for it (HAProxy with `stack up --workers N`).
    workers_extension: str = Field(default="1100", pattern=r"^[0-9A-Za-z*#+]+$")
    workers_port: int = Field(default=8760, ge=1, le=65535)  # 8765 is the demo backend's
    # Worker i (0-based) of `stack up --workers N` serves on worker_port_base + i.
    worker_port_base: int = Field(default=8770, ge=1, le=65535)
    # `stack up --sentinel`: Redis primary and replica on this port and + 1, sentinels on + 2 .. + 4.
    sentinel_port_base: int = Field(default=26380, ge=1, le=65530)
    softphone_password: SecretStr = SecretStr(DEFAULT_SOFTPHONE_PASSWORD)
    # Asterisk's systemname: it prefixes every channel's uniqueid, so boxes that share one Redis
    # and one worker pool never hand out the same channel id. Empty: not set (one box).
    system_name: str = Field(default="", pattern=r"^[A-Za-z0-9_-]{0,32}$")
    mirror: str | None = None
    start_timeout: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _port_range(self) -> StackSettings:
        _check_port_range(
            "stack.asterisk_rtp_min", "stack.asterisk_rtp_max", self.asterisk_rtp_min, self.asterisk_rtp_max
        )
        return self


class TransferSettings(_Section):
    """Where callers go when they need a person."""

    queue: str = Field(default="support", pattern=r"^[a-z0-9][a-z0-9_-]*$")
    # Ring time before the caller is brought back with an apology and an offer.
    timeout: float = Field(default=30.0, ge=5, le=600)


class CapacitySettings(_Section):
    """How many calls this instance drives at once, and what a caller past that hears.

    Past capacity every call's latency suffers (the speech CPU is shared), so a new call is
    turned away gracefully instead: the calls already up keep their latency."""

    # 0 = auto: CALLS_PER_CORE x CPU cores, from benchmarks/results/capacity.md on a 2-core box.
    max_calls: int = Field(default=0, ge=0, le=10000)
    # busy: answer, play Asterisk's "all circuits are busy" and hang up. queue: straight to the
    # human queue (transfer.queue), no agent. dialplan: continue at overflow_context/_extension
    # (e.g. the admin's own DTMF menu).
    overflow: Literal["busy", "queue", "dialplan"] = "busy"
    overflow_context: str = Field(default="ari-app-overflow", pattern=r"^[A-Za-z0-9_-]+$")
    overflow_extension: str = Field(default="s", pattern=r"^[0-9A-Za-z*#+_-]+$")


class CallSettings(_Section):
    """What a caller gets when something inside their call breaks, and how long a call may run.

    Why: a failure (an engine error, a stuck prompt, a bug) must end in an apology and a person,
    never in silence or a bare hang-up."""

    # queue: the caller goes to transfer.queue through the dialplan (Asterisk's Queue(): nothing
    # of ours is needed any more). dialplan: continue at failure_context/_extension. hangup:
    # apologise and hang up.
    on_failure: Literal["queue", "dialplan", "hangup"] = "queue"
    failure_context: str = Field(default="ari-app-failure", pattern=r"^[A-Za-z0-9_-]+$")
    failure_extension: str = Field(default="s", pattern=r"^[0-9A-Za-z*#+_-]+$")
    # Longest conversation with the agent (seconds, 0 = no limit); then the caller goes to the
    # on_failure target. Time bridged to a human does not count.
    max_call_s: float = Field(default=3600.0, ge=0)
    # Nobody speaking and nobody listening for this long (a stalled prompt, a dead listener) is
    # a fault: apology and fallback.
    watchdog_s: float = Field(default=8.0, ge=1, le=120)
    # Longest a turn may take to decide (understanding, dialogue and its tools, retries included).
    decide_timeout_s: float = Field(default=45.0, ge=1, le=600)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ARI_APP_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    ari: AriSettings = AriSettings()
    redis: RedisSettings = RedisSettings()
    media: MediaSettings = MediaSettings()
    stack: StackSettings = StackSettings()
    transfer: TransferSettings = TransferSettings()
    capacity: CapacitySettings = CapacitySettings()
    calls: CallSettings = CallSettings()
    session: SessionSettings = SessionSettings()
    web: WebSettings = WebSettings()
    nlu: NluSettings = NluSettings()
    dialog: DialogSettings = DialogSettings()
    speech: SpeechSettings = SpeechSettings()
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @model_validator(mode="after")
    def _no_default_secrets_off_loopback(self) -> Settings:
        """Shipped example secrets are fine on 127.0.0.1 (the lab) and refused anywhere else."""
        problems = []
        if (
            not _loopback(urlsplit(self.ari.url).hostname)
            and self.ari.password.get_secret_value() == DEFAULT_ARI_PASSWORD
        ):
            problems.append("ari.password is the shipped default while ari.url is not on loopback")
        if (
            not _loopback(self.stack.bind)
            and self.stack.softphone_password.get_secret_value() == DEFAULT_SOFTPHONE_PASSWORD
        ):
            problems.append(
                "stack.softphone_password is the shipped default while stack.bind is not loopback"
            )
        if (
            self.ari.mode == "outbound"
            and not _loopback(self.web.host)
            and self.ari.worker_password.get_secret_value() == DEFAULT_WORKER_PASSWORD
        ):
            problems.append("ari.worker_password is the shipped default while web.host is not loopback")
        if not _loopback(self.web.host) and self.web.metrics_token is None:
            problems.append(
                "web.host is not loopback: set web.metrics_token so /metrics is not open to the network"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _embedded_secrets(self) -> Settings:
        """The embedded stack's Redis requires the password it generated: use it when redis.url
        points at that Redis and names no credentials, and encrypt sensitive slots with the key
        it generated unless one is configured (nothing to configure for `make run`)."""
        u = urlsplit(self.redis.url)
        embedded = (u.hostname, u.port) == (self.stack.bind, self.stack.redis_port)
        if embedded and "@" not in u.netloc:
            password = quote(embedded_secret(self.stack, REDIS_PASSWORD_FILE), safe="")
            self.redis.url = urlunsplit(u._replace(netloc=f":{password}@{u.netloc}"))
        if embedded and self.session.encryption_key is None:  # sensitive slots encrypted by default
            self.session.encryption_key = SecretStr(embedded_secret(self.stack, SESSION_KEY_FILE))
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment beats the file (passed as init kwargs) so containers can override one value.
        return (env_settings, init_settings)


def _describe(err: ValidationError, origin: str) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        value = e.get("input")
        if any(w in key for w in ("password", "secret", "token", "key")):
            value = "***"
        if e["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown setting (check the spelling) in {origin}")
        elif not e["loc"] or (e["type"] == "value_error" and isinstance(e.get("input"), dict)):
            # A rule across sections or keys: the message names the settings; the input (a whole
            # section, maybe with secrets) is not echoed.
            msg = e["msg"].removeprefix("Value error, ")
            lines.append(f"  {msg if not e['loc'] or msg.startswith(key) else f'{key}: {msg}'} ({origin})")
        else:
            lines.append(f"  {key} = {value!r}: {e['msg']} ({origin})")
    return "invalid configuration:\n" + "\n".join(lines)


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Load settings from an optional YAML file plus the environment; raise ConfigError on bad values."""
    path = path or os.environ.get(CONFIG_ENV)
    data: dict[str, Any] = {}
    origin = "defaults/environment"
    if path:
        p = Path(path)
        origin = f"{p} or environment"
        try:
            raw = yaml.safe_load(p.read_text()) or {}
        except FileNotFoundError:
            raise ConfigError(f"config file {p} does not exist") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {p} is not valid YAML: {e}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"config file {p} must hold a mapping of sections, not {type(raw).__name__}")
        data = raw
    data.update(overrides)
    try:
        return Settings(**data)
    except ValidationError as e:
        raise ConfigError(_describe(e, origin)) from None
