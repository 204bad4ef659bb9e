"""The multi-node worker: claims executions from a shared database and holds them on leases.

Any number of these run against one PostgreSQL database (``runnel worker``, or inside
``runnel serve``). Each:

- claims queued executions (``FOR UPDATE SKIP LOCKED``: never one execution by two workers),
  as many per statement as it has free slots, each returned whole so that its run starts
  without reading it back; woken at once by a ``runnel_work`` notification, polling only
  as a fallback;
- renews the lease of everything it runs from a heartbeat; an execution it finds it no
  longer holds (it hung past its lease and another worker took over) is stopped here;
- takes over executions whose lease expired (their worker died or hung) and continues them
  from their last checkpoint; after ``max_takeovers`` the execution fails with a clear error
  instead of killing worker after worker;
- wakes parked executions (a due timer, a decided approval) so that any worker resumes them;
- on ``stop``: stops claiming, lets running executions finish within a grace period, then
  stops the rest at their checkpoint and releases them for another worker.

It also runs on SQLite, in one process (the tests use that); without a bus it is woken only
in-process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

from runnel.bus.postgres import PostgresBus
from runnel.engine.control import ControlSignal, ExecutionControl
from runnel.engine.executor import Executor
from runnel.model.execution import Execution, ExecutionStatus
from runnel.store import SqlStore
from runnel.worker.runner import ExecutionRunner

__all__ = ["ClusterWorker", "LeaseSettings"]

log = logging.getLogger(__name__)

_HELD = frozenset({ExecutionStatus.RUNNING, ExecutionStatus.PAUSED})

#: At most this many executions per claim statement.
_CLAIM_BATCH = 256


@dataclass(frozen=True, slots=True)
class LeaseSettings:
    """How a worker holds executions. ``lease_seconds`` must be several heartbeats long,
    so that a busy worker never loses a lease it is renewing."""

    concurrency: int = 64
    lease_seconds: float = 30.0
    heartbeat_seconds: float = 10.0
    #: Takeovers after which an execution fails instead of being taken over again.
    max_takeovers: int = 3
    #: Claim even if no notification came, every this many seconds.
    poll_seconds: float = 5.0
    #: Look for parked executions whose timer is due every this many seconds.
    timer_sweep_seconds: float = 1.0

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.heartbeat_seconds <= 0 or self.lease_seconds < 2 * self.heartbeat_seconds:
            raise ValueError("the lease must last at least two heartbeats")
        if self.max_takeovers < 0:
            raise ValueError("max_takeovers must not be negative")


class ClusterWorker:
    """Claims and runs executions under leases, at most ``settings.concurrency`` at once."""

    def __init__(
        self,
        store: SqlStore,
        executor: Executor,
        settings: LeaseSettings,
        *,
        bus: PostgresBus | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.store = store
        self.executor = executor
        self.settings = settings
        self.bus = bus
        # The pid alone could repeat on another machine or after a restart.
        self.worker_id = worker_id or (
            f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        )
        self._controls: dict[str, ExecutionControl] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []
        self._heartbeat: asyncio.Task[None] | None = None
        self._stopping = False
        #: Stopped by shutdown: released at the end of ``stop``.
        self._stopped: set[str] = set()
        #: Taken over by another worker while this one hung: stopped, not released.
        self._lost: set[str] = set()
        #: Whether the last claim found the queue non-empty (then a finished run claims more).
        self._saturated = False
        #: Claimed executions as the claim returned them, until their run reads them.
        self._claimed: dict[str, Execution] = {}
        self.runner = ExecutionRunner(cast(SqlStore, _ClaimedFirst(store, self._claimed)), executor)
        #: Ends an execution that cannot go on: (execution id, message).
        self.on_crash: Callable[[str, str], Awaitable[None]] | None = None
        self.takeovers = 0
        if bus is not None:
            bus.on_work = self._wake.set
            bus.on_control = self._on_control

    # -- the Dispatcher port (this process's part) -----------------------------------------

    def submit(self, execution_id: str) -> None:
        """An execution was queued: claim it now (other processes learn it from the bus)."""
        self._wake.set()

    def signal(self, execution_id: str, signal: ControlSignal) -> bool:
        """Pause, resume or cancel an execution running here; False if it does not."""
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

    def runs(self, execution_id: str) -> bool:
        """Whether this worker runs ``execution_id`` now."""
        return execution_id in self._controls

    def _on_control(self, execution_id: str, name: str) -> None:
        with contextlib.suppress(ValueError):
            self.signal(execution_id, ControlSignal(name))

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def running(self) -> int:
        return len(self._tasks)

    async def start(self, *, sole_process: bool = False) -> None:
        """Start claiming, heartbeating and sweeping timers.

        ``sole_process`` (SQLite): no other process shares the store, so whatever is still
        marked running was left by a previous process and is requeued at once.
        """
        if sole_process:
            await self.store.requeue_orphans(any_owner=True)
        self._loops = [
            asyncio.create_task(self._claim_loop(), name="runnel-worker-claim"),
            asyncio.create_task(self._timer_loop(), name="runnel-worker-timers"),
        ]
        self._heartbeat = asyncio.create_task(self._heartbeat_loop(), name="runnel-heartbeat")
        self._wake.set()

    async def stop(self, grace: float = 10.0) -> None:
        """Stop claiming, let running executions finish within ``grace`` seconds, then stop
        the rest at their checkpoints and release them, so that another worker continues
        them at once. Leases stay renewed until then. Idempotent."""
        if self._stopping:
            return
        self._stopping = True
        await _cancel_all(self._loops)
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks.values()), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        if self._heartbeat is not None:
            await _cancel_all([self._heartbeat])
        released = 0
        for execution_id in sorted(self._stopped):
            try:
                released += await self.store.release(execution_id, self.worker_id)
            except Exception:
                log.exception("releasing execution %s failed", execution_id)
        if released and self.bus is not None:
            self.bus.notify_work()
        if released:
            log.info("released %d execution(s) for other workers", released)

    # -- claiming ------------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.poll_seconds):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self._fill()
            except Exception:
                log.exception("claiming executions failed")

    async def _fill(self) -> None:
        """Claim until the queue is empty or every slot is busy: as many executions per
        statement as there are free slots (``FOR UPDATE SKIP LOCKED LIMIT n``)."""
        while not self._stopping:
            free = self.settings.concurrency - len(self._tasks)
            if free <= 0:
                self._saturated = True
                return
            claiming = asyncio.ensure_future(
                self.store.claim_many(
                    self.worker_id, self.settings.lease_seconds, min(free, _CLAIM_BATCH)
                )
            )
            try:
                claimed = await asyncio.shield(claiming)
            except asyncio.CancelledError:
                # Stopping: what the claim took is released by ``stop`` for another worker
                # at once, rather than held until its lease runs out.
                with contextlib.suppress(Exception):
                    self._stopped.update(execution.id for execution in await claiming)
                raise
            for execution in claimed:
                # The claim returned the row: the runner need not read it back.
                self._claimed[execution.id] = execution
                self._spawn(execution.id)
            if len(claimed) < min(free, _CLAIM_BATCH):
                self._saturated = False
                return

    def _spawn(self, execution_id: str) -> None:
        self._controls[execution_id] = ExecutionControl()
        task = asyncio.create_task(self._run(execution_id), name=f"exec:{execution_id}")
        self._tasks[execution_id] = task
        task.add_done_callback(lambda _: self._done(execution_id))

    def _done(self, execution_id: str) -> None:
        self._tasks.pop(execution_id, None)
        self._claimed.pop(execution_id, None)
        self._controls.pop(execution_id, None)
        self._lost.discard(execution_id)
        if self._saturated and not self._stopping:
            self._wake.set()

    # -- leases --------------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_seconds)
            try:
                await self._renew()
                if not self._stopping:
                    await self._take_over_expired()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("worker heartbeat failed")

    async def _renew(self) -> None:
        running_here = set(self._tasks)
        held = await self.store.renew_leases(self.worker_id, self.settings.lease_seconds)
        for execution_id in running_here - held:
            task = self._tasks.get(execution_id)
            if task is None or task.done() or execution_id in self._lost:
                continue
            execution = await self.store.get_execution(execution_id)
            # Not held but still running: another worker took it over while this one hung.
            if execution is not None and execution.status in _HELD:
                log.warning(
                    "execution %s was taken over by another worker; stopping it here", execution_id
                )
                self._lost.add(execution_id)
                task.cancel()

    async def _take_over_expired(self) -> None:
        while len(self._tasks) < self.settings.concurrency and not self._stopping:
            taken = await self.store.take_over(self.worker_id, self.settings.lease_seconds)
            if taken is None:
                return
            execution_id, takeovers = taken
            self.takeovers += 1
            if takeovers > self.settings.max_takeovers:
                await self._give_up(execution_id, takeovers)
                continue
            log.warning("took over execution %s (takeover %d)", execution_id, takeovers)
            self._spawn(execution_id)

    async def _give_up(self, execution_id: str, takeovers: int) -> None:
        message = (
            f"the worker running this execution stopped (crashed, was killed or hung) "
            f"{takeovers} times; giving up after {self.settings.max_takeovers} takeovers"
            " (RUNNEL_MAX_TAKEOVERS)"
        )
        log.error("execution %s: %s", execution_id, message)
        if self.on_crash is not None:
            await self.on_crash(execution_id, message)

    # -- parked executions ---------------------------------------------------------------

    async def _timer_loop(self) -> None:
        while not self._stopping:
            try:
                woken = await self.store.wake_waiting()
            except Exception:
                log.exception("waking parked executions failed")
                woken = []
            if woken:
                self._wake.set()
                if self.bus is not None:
                    self.bus.notify_work()
            await asyncio.sleep(self.settings.timer_sweep_seconds)

    # -- running -------------------------------------------------------------------------

    async def _run(self, execution_id: str) -> None:
        control = self._controls[execution_id]
        try:
            await self.runner.run(execution_id, control)
        except asyncio.CancelledError:
            # Shutdown: its checkpoints let another worker continue it. A lost one already
            # belongs to another worker.
            if execution_id not in self._lost:
                self._stopped.add(execution_id)
            raise
        except Exception as exc:
            log.exception("execution %s crashed the worker slot", execution_id)
            if self.on_crash is not None:
                with contextlib.suppress(Exception):
                    await self.on_crash(execution_id, f"internal error: {exc!r}")


class _ClaimedFirst:
    """The store as the runner sees it: ``get_execution`` of an execution just claimed
    answers from the claim's own row (taken in the claiming transaction, so as fresh as a
    read) instead of a round trip; everything else goes to the store."""

    def __init__(self, store: SqlStore, claimed: dict[str, Execution]) -> None:
        self._store = store
        self._claimed = claimed

    async def get_execution(self, execution_id: str) -> Execution | None:
        execution = self._claimed.pop(execution_id, None)
        if execution is not None:
            return execution
        return await self._store.get_execution(execution_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


async def _cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
