"""Server settings, read from the environment and a ``.env`` file (pydantic-settings).

Imported by ``runnel.cli``, ``runnel.engine_node``, ``runnel.api`` and ``runnel.services``
only. Every variable is ``RUNNEL_<NAME>`` except ``BIND_ADDRESS``, which keeps the Flow
Engine seed's name (``RUNNEL_BIND_ADDRESS`` works too), and the Flowork names
(``GATEWAY_SECRET_TOKEN``; for ``runnel engine``, ``EngineSettings``: ``FLOWORK_ENGINE_ID``,
``FLOWORK_ENGINE_TOKEN``, ``FLOWORK_GATEWAY_URL``).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

import platformdirs
from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

if TYPE_CHECKING:
    from runnel.platform import PlatformConfig

__all__ = [
    "DEFAULT_BIND",
    "DEFAULT_ENGINE_BIND",
    "BindAddress",
    "EngineSettings",
    "Settings",
    "default_data_dir",
    "is_loopback_host",
    "parse_bind",
]

DEFAULT_BIND: Final = "127.0.0.1:3000"
#: Where ``runnel engine`` listens by default (its REST API and Core Engine socket).
DEFAULT_ENGINE_BIND: Final = "127.0.0.1:8989"
_LOG_LEVELS: Final = ("critical", "error", "warning", "info", "debug", "trace")


def default_data_dir() -> Path:
    """The per-user data folder (``~/.local/share/runnel`` on Linux)."""
    return platformdirs.user_data_path("runnel", appauthor=False)


@dataclass(frozen=True, slots=True)
class BindAddress:
    """A parsed ``HOST:PORT`` (IPv6 hosts as ``[::1]:3000``)."""

    host: str
    port: int

    @property
    def loopback(self) -> bool:
        return is_loopback_host(self.host)

    def url(self, scheme: str = "http") -> str:
        """``http://host:port``; a wildcard host is shown as the loopback address."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)
        if ":" in host:
            host = f"[{host}]"
        return f"{scheme}://{host}:{self.port}"

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_bind(text: str) -> BindAddress:
    """``HOST:PORT``, ``[V6]:PORT`` or ``:PORT`` (all interfaces) -> ``BindAddress``.

    Raises ValueError with a message that says what is wrong.
    """
    raw = text.strip()
    if raw.startswith("["):
        host, sep, rest = raw[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise ValueError(f"bind address {text!r}: expected [IPv6]:PORT")
        port_text = rest[1:]
    else:
        host, sep, port_text = raw.rpartition(":")
        if not sep:
            raise ValueError(f"bind address {text!r}: expected HOST:PORT")
        if ":" in host:
            raise ValueError(f"bind address {text!r}: write an IPv6 host as [HOST]:PORT")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"bind address {text!r}: the port must be a number from 0 to 65535")
    return BindAddress(host or "0.0.0.0", int(port_text))


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` only reaches this machine (``localhost``, ``127.x``, ``::1``)."""
    if host.lower() in {"localhost", "localhost.localdomain"}:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    """Everything ``runnel serve`` and the app read from the environment."""

    model_config = SettingsConfigDict(
        env_prefix="RUNNEL_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        frozen=True,
    )

    bind_address: str = Field(
        default=DEFAULT_BIND,
        validation_alias=AliasChoices("BIND_ADDRESS", "RUNNEL_BIND_ADDRESS", "bind_address"),
        description="HOST:PORT the server listens on.",
    )
    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Where the database, the admin token and other state live.",
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file runnel.db in the data dir."
    )
    log: str = Field(
        default="info", description="Log level: critical, error, warning, info, debug."
    )
    access_log: bool = Field(default=False, description="Log every HTTP request.")
    max_body_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1, description="Largest request body accepted (413 beyond)."
    )
    rate_limit_per_second: float = Field(
        default=200.0, ge=0, description="Requests per second per API key (0 turns limiting off)."
    )
    rate_limit_burst: int = Field(default=400, ge=1, description="Token bucket size per API key.")
    http_allowed_hosts: Annotated[frozenset[str], NoDecode] = Field(
        default=frozenset(),
        description="Hosts http.request may reach on private or loopback addresses.",
    )
    no_auth: bool = Field(
        default=False, description="Let requests in without credentials (loopback)."
    )
    events_queue_size: int = Field(
        default=1024, ge=1, description="Events buffered per socket before the client gets Lagged."
    )
    shutdown_timeout: float = Field(
        default=10.0, ge=0, description="Seconds open requests get to finish on shutdown."
    )

    secret_key: str | None = Field(
        default=None,
        repr=False,
        description="The instance key (at least 32 characters) that signs API keys and"
        " encrypts stored secrets; default: secret.key in the data dir, made on first start."
        " Every process of one installation needs the same.",
    )

    login_max_failures: int = Field(
        default=10,
        ge=1,
        description="Failed sign-ins (per email, per address) within 15 minutes after which"
        " sign-in is refused with 429; from the fourth on each is slowed down.",
    )

    # -- Flowork gateway --------------------------------------------------------------------
    gateway_secret_token: str | None = Field(
        default=None,
        repr=False,
        validation_alias=AliasChoices(
            "GATEWAY_SECRET_TOKEN", "RUNNEL_GATEWAY_SECRET_TOKEN", "gateway_secret_token"
        ),
        description="The X-API-Key of engines and internal services (Flowork's"
        " GATEWAY_SECRET_TOKEN); the routes it guards are closed while it is unset.",
    )
    owner_address: str | None = Field(
        default=None,
        description="A Flowork (Ethereum) address to link to the owner account at start;"
        " the owner then owns the embedded engine as that address.",
    )
    news_file: Path | None = Field(
        default=None, description="A JSON file served as the Flowork news feed (GET /api/v1/news)."
    )
    browse_roots: Annotated[tuple[Path, ...], NoDecode] = Field(
        default=(),
        description="Folders the Flowork GUI may browse on this engine (comma-separated);"
        " default: the files folder in the data dir.",
    )

    # -- executions (worker) and multi-node (PostgreSQL) ------------------------------------
    worker: bool = Field(
        default=True, description="Run executions in this process (serve --no-worker: False)."
    )
    worker_concurrency: int = Field(
        default=64, ge=1, description="Executions one process runs at once."
    )
    lease_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How long a worker's claim on an execution lasts without a heartbeat;"
        " a dead worker's executions are taken over this long after it died.",
    )
    heartbeat_seconds: float = Field(
        default=10.0, gt=0, description="How often a worker renews its leases (< lease / 2)."
    )
    max_takeovers: int = Field(
        default=3, ge=0, description="Takeovers after which an execution fails instead."
    )
    worker_poll_seconds: float = Field(
        default=5.0, gt=0, description="Idle workers look for work this often without NOTIFY."
    )
    park_delays_over_ms: int | None = Field(
        default=None,
        ge=0,
        description="time.delay longer than this parks the execution, freeing the worker"
        " (default: 30000 on PostgreSQL, off on SQLite).",
    )

    @field_validator("owner_address")
    @classmethod
    def _check_owner_address(cls, value: str | None) -> str | None:
        from runnel.auth.signatures import is_address  # eth-account only when it is set

        if value is None or not value.strip():
            return None
        if not is_address(value):
            raise ValueError("must be an address: 0x and 40 hex characters")
        return value.strip().lower()

    @field_validator("http_allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: Any) -> Any:
        if isinstance(value, str):
            return frozenset(h.strip().lower() for h in value.split(",") if h.strip())
        return value

    @field_validator("browse_roots", mode="before")
    @classmethod
    def _split_roots(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(Path(p.strip()) for p in value.split(",") if p.strip())
        return value

    @field_validator("log", mode="before")
    @classmethod
    def _check_level(cls, value: Any) -> Any:
        if isinstance(value, str):
            level = value.strip().lower()
            if level not in _LOG_LEVELS:
                raise ValueError(f"unknown log level {value!r}; expected one of {_LOG_LEVELS}")
            return level
        return value

    @field_validator("bind_address")
    @classmethod
    def _check_bind(cls, value: str) -> str:
        parse_bind(value)
        return value

    @property
    def bind(self) -> BindAddress:
        return parse_bind(self.bind_address)

    @property
    def effective_database_url(self) -> str:
        """``database_url``, or the SQLite file in the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'runnel.db').resolve()}"

    @property
    def admin_token_path(self) -> Path:
        return self.data_dir / "admin-token"

    def platform_config(
        self, *, worker: bool | None = None, serves_api: bool = True
    ) -> PlatformConfig:
        """What the platform needs of these settings (``worker``: run executions here,
        default ``self.worker``; ``serves_api``: this process answers APIs)."""
        from runnel.platform import PlatformConfig  # the heavy imports only when used
        from runnel.worker.cluster import LeaseSettings

        return PlatformConfig(
            data_dir=self.data_dir,
            database_url=self.database_url,
            http_allowed_hosts=self.http_allowed_hosts,
            worker=self.worker if worker is None else worker,
            worker_concurrency=self.worker_concurrency,
            shutdown_grace_seconds=self.shutdown_timeout,
            leases=LeaseSettings(
                concurrency=self.worker_concurrency,
                lease_seconds=self.lease_seconds,
                heartbeat_seconds=self.heartbeat_seconds,
                max_takeovers=self.max_takeovers,
                poll_seconds=self.worker_poll_seconds,
            ),
            park_delays_over_ms=self.park_delays_over_ms,
            serves_api=serves_api,
            secret_key=self.secret_key,
            login_max_failures=self.login_max_failures,
            browse_roots=self.browse_roots,
        )


class EngineSettings(BaseSettings):
    """What ``runnel engine`` reads besides ``Settings``: which engine it is, its token,
    its gateway, and where it listens. The Flowork names (``FLOWORK_ENGINE_ID``,
    ``FLOWORK_ENGINE_TOKEN``, ``FLOWORK_GATEWAY_URL``, ``GATEWAY_SECRET_TOKEN``) come from
    the environment or ``.env``; the rest are ``RUNNEL_ENGINE_<NAME>``. Missing values
    are None here; ``runnel engine`` says which one it needs."""

    model_config = SettingsConfigDict(
        env_prefix="RUNNEL_ENGINE_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        frozen=True,
    )

    engine_id: str | None = Field(
        default=None,
        validation_alias=AliasChoices("FLOWORK_ENGINE_ID", "RUNNEL_ENGINE_ID", "engine_id"),
        description="The id the gateway gave this engine when it was registered.",
    )
    engine_token: str | None = Field(
        default=None,
        repr=False,
        validation_alias=AliasChoices(
            "FLOWORK_ENGINE_TOKEN", "RUNNEL_ENGINE_TOKEN", "engine_token"
        ),
        description="The engine's dev_engine_ token.",
    )
    gateway_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "FLOWORK_GATEWAY_URL", "RUNNEL_ENGINE_GATEWAY_URL", "gateway_url"
        ),
        description="The gateway's base URL, e.g. https://gateway.example.com.",
    )
    gateway_secret_token: str | None = Field(
        default=None,
        repr=False,
        validation_alias=AliasChoices(
            "GATEWAY_SECRET_TOKEN", "RUNNEL_GATEWAY_SECRET_TOKEN", "gateway_secret_token"
        ),
        description="The gateway's secret, from which the key it presents to this engine's"
        " REST API is derived; without it that API answers 401.",
    )
    bind_address: str = Field(
        default=DEFAULT_ENGINE_BIND,
        validation_alias=AliasChoices("RUNNEL_ENGINE_BIND", "bind_address"),
        description="HOST:PORT of the engine's REST API and Core Engine socket.",
    )
    public_url: str | None = Field(
        default=None,
        description="The URL the gateway reaches this engine's REST API at"
        " (internal_api_url); default: http://<bind>.",
    )
    data_dir: Path | None = Field(
        default=None,
        description="The engine's own data (default: engine-<id> in the user data folder).",
    )
    reconnect_max_seconds: float = Field(
        default=30.0, gt=0, description="The longest wait between two reconnection attempts."
    )
    refused_retry_seconds: float = Field(
        default=60.0,
        gt=0,
        description="The wait before trying again after the gateway refused the token.",
    )

    @field_validator("engine_id", "engine_token", "gateway_url", "gateway_secret_token")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return value.strip()

    @field_validator("gateway_url", "public_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        clean = value.strip().rstrip("/")
        if not clean.startswith(("http://", "https://")) or len(clean.split("://", 1)[1]) == 0:
            raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
        return clean

    @field_validator("bind_address")
    @classmethod
    def _check_bind(cls, value: str) -> str:
        parse_bind(value)
        return value

    @property
    def bind(self) -> BindAddress:
        return parse_bind(self.bind_address)

    @property
    def internal_api_url(self) -> str:
        """Where the gateway sends this engine's REST requests."""
        return self.public_url or self.bind.url()

    def effective_data_dir(self) -> Path:
        """``data_dir``, or ``engine-<id>`` in the per-user data folder."""
        if self.data_dir is not None:
            return self.data_dir
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.engine_id or "")
        return default_data_dir() / f"engine-{safe or 'unnamed'}"
