"""The worker that runs executions inside the API process (the embedded default).

It claims queued executions from the store, so a queued execution survives a restart, and is
woken in-process the moment one is queued: no polling delay. It is also the ``Dispatcher``
the services use to reach running executions, and runs at once, without the queue, the new
executions a caller waits for (``run_now``: a webhook, an execute): their row is written with
their first checkpoint, as ``running``, so a crash leaves them to be run again at the next
start like any execution it was running.

Its runs keep the checkpoints of a workflow that saves no history of them in memory
(``RunRequest.history_in_memory``): this process owns them until they end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from runnel.engine.control import ControlSignal, ExecutionControl
from runnel.engine.executor import Executor
from runnel.engine.run import ExecutionResult, RunRequest
from runnel.model.execution import Execution
from runnel.services.dispatch import RunInterrupted
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
        self._tasks: set[asyncio.Task[Any]] = set()
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = False
        self._stopped: set[str] = set()
        # The claim loop stopped at the concurrency limit: a slot freeing up wakes it.
        self._claims_blocked = False
        # The executions of run_now runs, while they run.
        self._inline: dict[str, Execution] = {}
        self.runner = ExecutionRunner(store, executor, history_in_memory=True)
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

    async def run_now(self, request: RunRequest) -> ExecutionResult | None:
        """Run a new execution at once in a worker slot (see the module docstring); None
        when every slot is taken or the worker is stopping. The run goes on if the caller
        stops waiting."""
        if self._stopping or self._loop_task is None or len(self._tasks) >= self.concurrency:
            return None
        control = ExecutionControl()
        self._controls[request.execution_id] = control
        if request.create is not None:
            self._inline[request.execution_id] = request.create
        task = asyncio.create_task(
            self._run_inline(request, control), name=f"exec:{request.execution_id}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._done)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if task.cancelled() and (current is None or not current.cancelling()):
                raise RunInterrupted(request.execution_id) from None
            raise

    async def _run_inline(self, request: RunRequest, control: ExecutionControl) -> ExecutionResult:
        try:
            return await self.executor.run(request, control)
        except asyncio.CancelledError:
            raise  # shutdown: a row written as running runs again at the next start
        except Exception as exc:
            log.exception("execution %s crashed the worker slot", request.execution_id)
            if self.on_crash is not None:
                with contextlib.suppress(Exception):
                    await self.on_crash(request.execution_id, f"internal error: {exc!r}")
            raise
        finally:
            self._controls.pop(request.execution_id, None)
            self._inline.pop(request.execution_id, None)

    def in_memory(self, execution_id: str) -> Execution | None:
        """The execution of a ``run_now`` run while it runs (see ``InlineDispatcher``)."""
        return self._inline.get(execution_id)

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
            self._claims_blocked = False
            while not self._stopping:
                if len(self._tasks) >= self.concurrency:
                    self._claims_blocked = True
                    break
                try:
                    execution_id = await self.store.claim(self.worker_id, self.lease_seconds)
                except Exception:
                    log.exception("claiming an execution failed")
                    break
                if execution_id is None:
                    break
                # Reachable by signals from now on, before its task first runs: a cancel
                # in between would otherwise end it outside the worker while it runs.
                control = ExecutionControl()
                self._controls[execution_id] = control
                task = asyncio.create_task(
                    self._run(execution_id, control), name=f"exec:{execution_id}"
                )
                self._tasks.add(task)
                task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not self._stopping and self._claims_blocked:
            self._wake.set()

    async def _run(self, execution_id: str, control: ExecutionControl) -> None:
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
