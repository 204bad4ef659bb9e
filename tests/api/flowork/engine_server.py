"""A separate engine's REST API under uvicorn in a thread, on its own SQLite store: what a
``runnel engine`` process serves on its ``internal_api_url``."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import uvicorn

from runnel.api.flowork.engine_api import EngineApiContext, create_engine_api
from runnel.auth.sealing import Sealer
from runnel.engine.registry import default_registry
from runnel.services.dashboard import DashboardService
from runnel.services.errors import Forbidden
from runnel.services.presets import PresetService
from runnel.services.share_links import PresetAction, ShareGrant
from runnel.services.variables import VariableService
from runnel.store import SqlStore

__all__ = ["EngineServer"]

_T = TypeVar("_T")


class _NoShareLinks:
    """This test engine knows no share links."""

    async def authorize(
        self, token: str, owner: str | None, preset_name: str, action: PresetAction
    ) -> ShareGrant:
        raise Forbidden("this engine accepts no share links")


class EngineServer:
    def __init__(self, database: Path, secret: str) -> None:
        self.store = SqlStore.open(f"sqlite:///{database}")
        context = EngineApiContext(
            presets=PresetService(self.store),
            variables=VariableService(self.store, Sealer(b"e" * 32)),
            dashboard=DashboardService(self.store),
            share_grants=_NoShareLinks(),
            registry=default_registry(),
            secret=secret,
        )
        self.app = create_engine_api(context)
        self.port = 0
        self._up = threading.Event()
        outer = self

        class Server(uvicorn.Server):
            async def startup(self, sockets: list[socket.socket] | None = None) -> None:
                await super().startup(sockets)
                outer.port = self.servers[0].sockets[0].getsockname()[1]
                outer.loop = asyncio.get_running_loop()
                outer._up.set()

        config = uvicorn.Config(self.app, host="127.0.0.1", port=0, log_level="warning")
        self.server = Server(config)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=self.server.run, name="engine-api", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> EngineServer:
        self.thread.start()
        if not self._up.wait(30):
            raise RuntimeError("the engine API did not start")
        return self

    def run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        """Run ``coroutine`` on the server's loop (where its store lives)."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(30)

    def stop(self) -> None:
        if self.loop is not None:
            asyncio.run_coroutine_threadsafe(self.store.close(), self.loop).result(30)
        self.server.should_exit = True
        self.thread.join(30)
