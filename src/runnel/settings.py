"""Server settings, read from the environment and a ``.env`` file (pydantic-settings).

Imported by ``runnel.cli``, ``runnel.api`` and ``runnel.services`` only. Every variable is
``RUNNEL_<NAME>`` except ``BIND_ADDRESS``, which keeps the Flow Engine seed's name
(``RUNNEL_BIND_ADDRESS`` works too).
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
    "BindAddress",
    "Settings",
    "default_data_dir",
    "is_loopback_host",
    "parse_bind",
]

DEFAULT_BIND: Final = "127.0.0.1:3000"
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

    @field_validator("http_allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: Any) -> Any:
        if isinstance(value, str):
            return frozenset(h.strip().lower() for h in value.split(",") if h.strip())
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

    def platform_config(self, *, worker: bool = True) -> PlatformConfig:
        """What the platform needs of these settings (``worker``: run executions here)."""
        from runnel.platform import PlatformConfig  # the heavy imports only when used

        return PlatformConfig(
            data_dir=self.data_dir,
            database_url=self.database_url,
            http_allowed_hosts=self.http_allowed_hosts,
            worker=worker,
            shutdown_grace_seconds=self.shutdown_timeout,
        )
