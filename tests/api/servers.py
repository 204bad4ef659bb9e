"""A real uvicorn server in a thread of the test process, so that a test can reach into its
platform (publish on its bus, read its store) while clients talk to it over TCP."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import httpx
import uvicorn

from runnel.api.app import create_served_app
from runnel.platform import Platform
from runnel.services.accounts import OwnerBootstrap
from runnel.settings import Settings

__all__ = ["ThreadServer"]

_T = TypeVar("_T")
STARTUP_SECONDS = 60.0


class ThreadServer:
    """``create_served_app(settings)`` under uvicorn on ``127.0.0.1:<free port>``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.platform: Platform | None = None
        self.bootstrap: OwnerBootstrap | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.port = 0
        self._up = threading.Event()
        self._failure: BaseException | None = None
        self.app = create_served_app(settings, on_ready=self._on_ready)
        outer = self

        class Server(uvicorn.Server):
            async def startup(self, sockets: list[socket.socket] | None = None) -> None:
                await super().startup(sockets)
                outer.port = self.servers[0].sockets[0].getsockname()[1]
                outer._up.set()

        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"
        )
        self.server = Server(config)
        self.thread = threading.Thread(target=self._run, name="api-test-server", daemon=True)

    def _on_ready(self, platform: Platform, bootstrap: OwnerBootstrap | None) -> None:
        self.platform = platform
        self.bootstrap = bootstrap
        self.loop = asyncio.get_running_loop()

    def _run(self) -> None:
        try:
            self.server.run()
        except BaseException as exc:
            self._failure = exc
        finally:
            self._up.set()

    def start(self) -> ThreadServer:
        self.thread.start()
        if not self._up.wait(STARTUP_SECONDS) or self._failure or not self.port:
            raise RuntimeError(f"the test server did not start: {self._failure!r}")
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(STARTUP_SECONDS)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def token(self) -> str:
        assert self.bootstrap is not None
        return self.bootstrap.token

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers=self.auth, timeout=30, **kwargs)

    def call(self, function: Callable[[], _T]) -> None:
        """Run ``function`` on the server's event loop (soon, in one go)."""
        assert self.loop is not None
        self.loop.call_soon_threadsafe(function)

    def run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        """Run ``coroutine`` on the server's event loop and wait for its result."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(STARTUP_SECONDS)
