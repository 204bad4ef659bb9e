"""The worker that runs executions inside the API process (the embedded default).

It claims queued executions from the store, so a queued execution survives a restart, and is
woken in-process the moment one is queued: no polling delay. It is also the ``Dispatcher``
the services use to reach running executions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable

from runnel.engine.control import ControlSignal, ExecutionControl
from runnel.engine.executor import Executor
from runnel.store import SqlStore
from runnel.worker.runner import ExecutionRunner

__all__ = ["EmbeddedWorker"]

log = logging.getLogger(__name__)


class EmbeddedWorker:
    """Claims and runs executions, at most ``concurrency`` at once."""

    def __init__(
        self,
        store: SqlStore,
        executor: Executor,
        *,
        concurrency: int = 64,
        lease_seconds: float = 300.0,
        worker_id: str | None = None,
    ) -> None:
        self.store = store
        self.executor = executor
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self._controls: dict[str, ExecutionControl] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = False
        self._stopped: set[str] = set()
        self.runner = ExecutionRunner(store, executor)
        #: Ends an execution whose run raised outside any node: (execution id, message).
        self.on_crash: Callable[[str, str], Awaitable[None]] | None = None

    # -- the Dispatcher port -----------------------------------------------------------

    def submit(self, execution_id: str) -> None:
        """An execution was queued: claim it now."""
        self._wake.set()

    def signal(self, execution_id: str, signal: ControlSignal) -> bool:
        control = self._controls.get(execution_id)
        if control is None:
            return False
        if signal is ControlSignal.CANCEL:
            control.cancel()
        elif signal is ControlSignal.PAUSE:
            control.pause()
        else:
            control.resume()
        return True

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def running(self) -> int:
        return len(self._tasks)

    async def start(self, *, sole_process: bool = True) -> None:
        """Start claiming; executions queued before this start are claimed at once.

        ``sole_process``: no other worker shares the store (the embedded default), so every
        execution still marked running was left by a previous process and runs again.
        """
        await self.store.requeue_orphans(any_owner=sole_process)
        self._loop_task = asyncio.create_task(self._claim_loop(), name="runnel-worker")
        self._wake.set()

    async def stop(self, grace: float = 10.0) -> None:
        """Stop claiming, let running executions finish within ``grace`` seconds, then
        stop the rest where they are: their checkpoints let them continue later."""
        self._stopping = True
        self._wake.set()
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        for execution_id in list(self._stopped):
            with contextlib.suppress(Exception):
                await self.store.release(execution_id, self.worker_id)

    async def _claim_loop(self) -> None:
        while not self._stopping:
            await self._wake.wait()
            self._wake.clear()
            while not self._stopping and len(self._tasks) < self.concurrency:
                try:
                    execution_id = await self.store.claim(self.worker_id, self.lease_seconds)
                except Exception:
                    log.exception("claiming an execution failed")
                    break
                if execution_id is None:
                    break
                task = asyncio.create_task(self._run(execution_id), name=f"exec:{execution_id}")
                self._tasks.add(task)
                task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not self._stopping:
            self._wake.set()

    async def _run(self, execution_id: str) -> None:
        control = ExecutionControl()
        self._controls[execution_id] = control
        try:
            await self.runner.run(execution_id, control)
        except asyncio.CancelledError:
            # Stopped mid-run by shutdown: its checkpoints let it continue elsewhere.
            self._stopped.add(execution_id)
            raise
        except Exception as exc:
            log.exception("execution %s crashed the worker slot", execution_id)
            if self.on_crash is not None:
                with contextlib.suppress(Exception):
                    await self.on_crash(execution_id, f"internal error: {exc!r}")
        finally:
            self._controls.pop(execution_id, None)
