"""``runnel serve``: uvicorn serving the API with the embedded worker in this process."""

from __future__ import annotations

import logging
import signal
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from runnel.cli.errors import EXIT_FAILED, EXIT_OK, UsageProblem
from runnel.settings import BindAddress, Settings

if TYPE_CHECKING:
    import uvicorn

    from runnel.platform import Platform
    from runnel.services.accounts import OwnerBootstrap

__all__ = ["load_settings", "masked_url", "serve", "uvicorn_options"]


def load_settings(**overrides: Any) -> Settings:
    """``Settings`` from the environment and ``.env``, with the command line's values on
    top (None means "not given"); a bad value is a ``UsageProblem``."""
    given = {key: value for key, value in overrides.items() if value is not None and value}
    try:
        return Settings(**given)
    except ValidationError as exc:
        lines = [
            f"{'.'.join(str(p) for p in error['loc']) or 'settings'}: {error['msg']}"
            for error in exc.errors()
        ]
        raise UsageProblem("invalid settings", lines) from None


def masked_url(url: str) -> str:
    """A database URL with its password hidden."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in credentials:
        return url
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """What every runnel server tells uvicorn beyond the app, the address and the lifespan:
    logging, the graceful-shutdown bound, no Server header, the WebSocket frame limit."""
    return {
        "log_level": settings.log,
        "access_log": settings.access_log,
        "timeout_graceful_shutdown": int(settings.shutdown_timeout) or None,
        "server_header": False,
        "ws_max_size": settings.max_body_bytes,
    }


def _say(text: str) -> None:
    print(text, flush=True)


class _Started:
    """What the app's startup hands over: the platform, and the owner's first key until it
    is printed."""

    def __init__(self) -> None:
        self.platform: Platform | None = None
        self.bootstrap: OwnerBootstrap | None = None

    def on_ready(self, platform: Platform, bootstrap: OwnerBootstrap | None) -> None:
        self.platform = platform
        self.bootstrap = bootstrap


def _announce(
    server: uvicorn.Server,
    settings: Settings,
    bootstrap: OwnerBootstrap | None,
    platform: Platform | None = None,
) -> None:
    """Where the data is, the embedded engine's id, the first admin token (once), and last
    where the server listens (so that whoever waits for that line has the rest)."""
    from runnel.api.common.version import runnel_version

    _say(f"data: {settings.data_dir.resolve()}")
    _say(f"database: {masked_url(settings.effective_database_url)}")
    embedded = platform.flowork.embedded_engine if platform is not None else None
    if embedded is not None:
        _say(f"embedded engine: {embedded.id}")
        _write_engine_id(settings.data_dir, embedded.id)
    if settings.no_auth:
        _say("auth: OFF (--no-auth): every request is let in without credentials")
    if bootstrap is not None:
        _say("")
        _say("First start: created the owner account and an admin API key.")
        _say(f"Admin token (shown once; also in {bootstrap.token_file}):")
        _say(f"  {bootstrap.token}")
        _say("Send it as 'Authorization: Bearer <token>'; make more with 'runnel keys create'.")
        _say("")
    for listener in server.servers:
        for sock in listener.sockets or ():
            host, port = sock.getsockname()[:2]
            url = BindAddress(host, port).url()
            _say(f"runnel {runnel_version()} listening on {url} (API docs at {url}/docs)")


def _write_engine_id(data_dir: Path, engine_id: str) -> None:
    """``<data-dir>/engine-id``: the embedded engine's id, for scripts and the GUI's
    ``?engineId=`` (the Core Engine socket of this server)."""
    path = data_dir / "engine-id"
    try:
        if not path.exists() or path.read_text().strip() != engine_id:
            path.write_text(engine_id + "\n")
    except OSError as error:  # a read-only data dir still serves
        logging.getLogger(__name__).warning("could not write %s: %s", path, error)


def _after_shutdown(signum: int, frame: object) -> None:
    """The signal uvicorn re-raises once it has shut down: nothing left to do."""


def serve(bind: str | None, data_dir: Path | None, no_auth: bool, *, worker: bool = True) -> int:
    """Run the server until SIGINT or SIGTERM; returns the exit code. ``worker=False``
    (``--no-worker``): answer the APIs only, leaving executions to ``runnel worker``."""
    from runnel.cli.worker import check_startup

    settings = load_settings(bind_address=bind, data_dir=data_dir, no_auth=no_auth or None)
    if not worker:
        settings = settings.model_copy(update={"worker": False})
    check_startup(settings)
    address = settings.bind
    if settings.no_auth and not address.loopback:
        raise UsageProblem(
            f"--no-auth refuses to listen on {address}: without credentials anyone who can"
            " reach the port could run workflows",
            ["bind a loopback address instead, e.g. --bind 127.0.0.1:3000, or drop --no-auth"],
        )
    logging.basicConfig(
        level=settings.log.upper() if settings.log != "trace" else logging.DEBUG,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    import uvicorn

    from runnel.api.app import create_served_app, drain

    class Server(uvicorn.Server):
        """uvicorn's server, announcing where it listens once its sockets are bound, and
        draining the platform before it waits for open connections at shutdown."""

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if not self.should_exit:
                _announce(self, settings, started.bootstrap, started.platform)
                started.bootstrap = None

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            if started.platform is not None:
                await drain(started.platform)
            await super().shutdown(sockets)

    started = _Started()
    config = uvicorn.Config(
        create_served_app(settings, on_ready=started.on_ready),
        host=address.host,
        port=address.port,
        lifespan="on",
        **uvicorn_options(settings),
    )
    server = Server(config)
    # uvicorn shuts down gracefully on SIGINT and SIGTERM, then raises the signal again for
    # the handler that was there before it: this one, so that a clean shutdown exits 0.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _after_shutdown)
    server.run()
    return EXIT_OK if server.started else EXIT_FAILED
