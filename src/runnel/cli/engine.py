"""``runnel engine``: an engine-only process linked to a Flowork gateway.

It runs its own platform (its own SQLite store in its data dir, its worker), serves the
engine REST API and the Core Engine socket on its bind, and keeps a Socket.IO link to the
gateway's ``/engine-socket`` (``runnel.engine_node``). SIGINT or SIGTERM: the link closes,
running jobs finish or are checkpointed, exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer
from pydantic import ValidationError

from runnel.auth.engine_tokens import looks_like_engine_token
from runnel.cli.admin import fail
from runnel.cli.errors import EXIT_FAILED, EXIT_OK, UsageProblem
from runnel.cli.serve import load_settings, uvicorn_options
from runnel.heap import settled_heap
from runnel.settings import DEFAULT_ENGINE_BIND, BindAddress, EngineSettings, Settings

if TYPE_CHECKING:
    from runnel.engine_node.app import EngineNode

__all__ = ["engine_command", "load_engine_settings", "run_engine"]

#: How long a stopping engine waits for its gateway link to close.
_LINK_STOP_SECONDS: Final = 5.0


def _say(text: str) -> None:
    print(text, flush=True)


def load_engine_settings(**overrides: Any) -> EngineSettings:
    """``EngineSettings`` from the environment and ``.env`` with the command line's values
    on top, checked: what is missing or malformed is a ``UsageProblem`` saying how to
    give it."""
    given = {key: value for key, value in overrides.items() if value is not None and value}
    try:
        settings = EngineSettings(**given)
    except ValidationError as exc:
        lines = [
            f"{'.'.join(str(p) for p in error['loc']) or 'settings'}: {error['msg']}"
            for error in exc.errors()
        ]
        raise UsageProblem("invalid engine settings", lines) from None
    missing: list[str] = []
    if settings.engine_id is None:
        missing.append(
            "the engine id: pass --engine-id ID or set FLOWORK_ENGINE_ID (the gateway shows"
            " it when the engine is registered)"
        )
    if settings.engine_token is None:
        missing.append(
            "the engine token: pass --token dev_engine_... or set FLOWORK_ENGINE_TOKEN (shown"
            " once when the engine is registered or its token reset)"
        )
    if settings.gateway_url is None:
        missing.append(
            "the gateway: pass --gateway URL or set FLOWORK_GATEWAY_URL"
            " (e.g. https://gateway.example.com)"
        )
    if missing:
        raise UsageProblem("runnel engine needs " + _names(missing), missing)
    if not looks_like_engine_token(settings.engine_token):
        raise UsageProblem(
            "the engine token is malformed",
            ["expected dev_engine_ followed by 32 lower-case hex characters"],
        )
    return settings


def _names(missing: list[str]) -> str:
    names = [line.split(":", 1)[0] for line in missing]
    return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]


def engine_command(
    gateway: Annotated[
        str | None,
        typer.Option(
            "--gateway",
            help="The gateway's URL, e.g. https://gateway.example.com (or FLOWORK_GATEWAY_URL).",
        ),
    ] = None,
    engine_id: Annotated[
        str | None,
        typer.Option(
            "--engine-id", help="The id the gateway gave this engine (or FLOWORK_ENGINE_ID)."
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option("--token", help="The engine's dev_engine_ token (or FLOWORK_ENGINE_TOKEN)."),
    ] = None,
    bind: Annotated[
        str | None,
        typer.Option(
            "--bind",
            help="HOST:PORT of the engine's API and socket (default: RUNNEL_ENGINE_BIND or"
            f" {DEFAULT_ENGINE_BIND}).",
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="The engine's own data (default: engine-<id> in the user data folder).",
        ),
    ] = None,
) -> None:
    """Run an engine linked to a gateway until SIGINT or SIGTERM.

    It runs its jobs on its own store and serves the engine API and the Core Engine socket.
    It stays connected to the gateway, reconnecting when the gateway goes away.
    GATEWAY_SECRET_TOKEN (environment or .env) lets the gateway call the engine's API.
    """
    try:
        code = run_engine(gateway, engine_id, token, bind, data_dir)
    except UsageProblem as problem:
        fail(problem)
    raise typer.Exit(code)


def run_engine(
    gateway: str | None,
    engine_id: str | None,
    token: str | None,
    bind: str | None,
    data_dir: Path | None,
) -> int:
    """Run the engine until SIGINT or SIGTERM; returns the exit code."""
    settings = load_engine_settings(
        gateway_url=gateway,
        engine_id=engine_id,
        engine_token=token,
        bind_address=bind,
        data_dir=data_dir,
    )
    base = load_settings()
    logging.basicConfig(
        level=base.log.upper() if base.log != "trace" else logging.DEBUG,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return asyncio.run(_serve(settings, base))
    except Exception as exc:
        from runnel.store.errors import StoreError
        from runnel.store.guards import DatabaseInUse

        if isinstance(exc, DatabaseInUse):
            raise UsageProblem(
                f"another process uses the engine's data dir {settings.effective_data_dir()}",
                ["run each engine on its own data dir (--data-dir)"],
            ) from None
        if isinstance(exc, StoreError):
            raise UsageProblem(str(exc)) from None
        raise


def _after_shutdown(signum: int, frame: object) -> None:
    """The signal uvicorn re-raises once it has shut down: nothing left to do."""


async def _serve(settings: EngineSettings, base: Settings) -> int:
    import uvicorn

    from runnel.engine_node.app import EngineNode

    node = await EngineNode.open(settings, base)
    link_task: asyncio.Task[None] | None = None
    address = settings.bind

    class Server(uvicorn.Server):
        """Says where it listens and starts the gateway link once its socket is bound
        (so the gateway is told the real port)."""

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            nonlocal link_task
            await super().startup(sockets)
            if self.should_exit:
                return
            url = _listening_url(self) or address.url()
            _announce(node, settings, url)
            link = node.make_link(settings.public_url or url, _say)
            link_task = asyncio.create_task(link.run(), name="gateway-link")

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            if node.link is not None:
                node.link.stop()
            await super().shutdown(sockets)

    try:
        config = uvicorn.Config(
            node.app(),
            host=address.host,
            port=address.port,
            lifespan="off",
            **uvicorn_options(base),
        )
        server = Server(config)
        # uvicorn shuts down gracefully on SIGINT and SIGTERM, then raises the signal again
        # for the handler that was there before it: this one, so that the exit is clean.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, _after_shutdown)
        with settled_heap():
            await server.serve()
    finally:
        if node.link is not None:
            node.link.stop()
        if link_task is not None:
            # A connection attempt in progress gets a moment to end, then is cut short.
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(link_task, _LINK_STOP_SECONDS)
        await node.close()
    _say("stopped")
    return EXIT_OK if server.started else EXIT_FAILED


def _listening_url(server: Any) -> str | None:
    for listener in server.servers:
        for sock in listener.sockets or ():
            host, port = sock.getsockname()[:2]
            return BindAddress(host, port).url()
    return None


def _announce(node: EngineNode, settings: EngineSettings, url: str) -> None:
    from runnel.api.common.version import runnel_version

    _say(f"data: {node.data_dir.resolve()}")
    _say(f"gateway: {node.gateway_url}")
    if not settings.gateway_secret_token:
        _say(
            "warning: GATEWAY_SECRET_TOKEN is not set: the gateway cannot call this engine's"
            " REST API (it answers 401)"
        )
    _say(
        f"runnel {runnel_version()} engine {node.engine_id} listening on {url}"
        f" (Core Engine socket: {url.replace('http', 'ws', 1)}/?engineId={node.engine_id})"
    )
