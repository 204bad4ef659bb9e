"""Jobs of one Core Engine: execute or simulate a Flowork workflow, stop, pause and resume
one job, approvals, connection history, the global loop and the global error workflow.

A **job** is what the GUI starts with ``execute_workflow``: its ``workflow_data`` (or the
starter's preset) becomes a canonical workflow, stored as ``flowork:<address>:preset:<name>``
or ``flowork:<address>:unsaved`` (a new version only when the graph changed), owned by the
starter's address (so flow8 users never list it), and marked ``extra["flowork_job"]``.
The job runs it as one execution whose id is the ``job_id``; with a ``global_loop_config``
of N iterations it runs N executions one after the other (``<job_id>``,
``<job_id>~2``, ... ``<job_id>~N``), with the configured delay between them, stopping at the
first that does not succeed. The job's events reach its audience (the starter and the
engine owner) as seed-002 messages (``job_events``).

Who knows what: the starter is the owner of the job's workflow and an error workflow's
executions say so in their ``trigger``, so that a job outlives this object's memory:
connection history reads the store, and an approval, stop, pause or resume of a job
nobody follows here (the process restarted while it waited) follows it again. What runs
*now* (the loop, the audience) lives here. Nothing else is stored: no migration.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from runnel.auth.signatures import InvalidSignature, normalize_address
from runnel.bus import Bus, Lagged, Subscription
from runnel.model.events import Event, EventType
from runnel.model.execution import Execution, ExecutionMode, ExecutionStatus
from runnel.model.flowork import (
    FloworkFormatError,
    LoopConfig,
    loop_config,
    workflow_from_flowork,
)
from runnel.model.workflow import Workflow
from runnel.services.components import flowork_ports
from runnel.services.core_engine.job_events import (
    JobRenderer,
    JobStatus,
    flowork_status,
    log_message,
    status_update,
)
from runnel.services.core_engine.types import EngineAuthority, EngineUser, Outgoing
from runnel.services.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    ProblemDetail,
    ServiceError,
)
from runnel.services.executions import ExecutionService
from runnel.services.presets import PresetService, check_preset_name
from runnel.services.variables import VariableService
from runnel.services.workflows import WorkflowService
from runnel.store.errors import ConflictError
from runnel.store.workflows import encode_definition

__all__ = [
    "ERROR_TRIGGER",
    "JOB_MARK",
    "TRIGGER",
    "EngineSettingsLookup",
    "JobDeps",
    "JobService",
    "JobVariables",
    "iteration_execution_id",
    "job_starter",
]

log = logging.getLogger(__name__)

#: ``workflow.extra`` key marking a job's workflow: ``{"starter", "preset_name"}``.
JOB_MARK: Final = "flowork_job"
#: A GUI job id is a UUID; allow any short id without the iteration separator ``~``.
_JOB_ID: Final = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
_ITERATION_SEP: Final = "~"
#: ``Execution.trigger`` of a job's executions; an error workflow's says so, so that its
#: failure starts no other one even when this process restarted meanwhile.
TRIGGER: Final = "flowork"
ERROR_TRIGGER: Final = "flowork-error-workflow"
#: Most executions probed for one job (``global_loop_config`` allows more; past this
#: many, history and approvals read only the first ones).
MAX_ITERATIONS: Final = 100_000

#: A user's engine settings (``global_error_handler_enabled``,
#: ``global_error_workflow_preset``...), e.g. ``EngineSettingsService.get``.
EngineSettingsLookup = Callable[[str], Awaitable[Mapping[str, Any]]]


@dataclass(frozen=True, slots=True)
class JobDeps:
    """What the job service uses, of its engine's own platform."""

    workflows: WorkflowService
    executions: ExecutionService
    bus: Bus
    presets: PresetService
    variables: VariableService
    settings: EngineSettingsLookup
    engine_id: str
    authority: EngineAuthority
    clock: Callable[[], float] = time.time
    #: Chooses random loop delays (tests pass a seeded one).
    rng: random.Random = field(default_factory=random.SystemRandom)


def job_starter(workflow: Workflow) -> str | None:
    """The address that started jobs of ``workflow``, if it is a job's workflow."""
    mark = workflow.extra.get(JOB_MARK)
    starter = mark.get("starter") if isinstance(mark, Mapping) else None
    return starter if isinstance(starter, str) else None


class JobVariables:
    """The executor's variables hook (``RuntimeExecutor.variables``): a run of a job's
    workflow reads its starter's variables (``{{vars.NAME}}``), resolved by their mode when
    the run starts, and again when it goes on after a wait (an approval)."""

    def __init__(self, variables: VariableService) -> None:
        self._variables = variables

    async def __call__(self, workflow: Workflow) -> Mapping[str, Any]:
        starter = job_starter(workflow)
        if starter is None:
            return {}
        return await self._variables.values_for_run(starter)


@dataclass(frozen=True, slots=True)
class _Outcome:
    """How one execution of a job ended."""

    status: ExecutionStatus
    at: float
    error: str | None = None
    failed_node_id: str | None = None
    outputs: Any = None


class _Job:
    """A job running in this process."""

    __slots__ = (
        "audience",
        "error_job",
        "execution_id",
        "held",
        "inputs",
        "iteration",
        "job_id",
        "loop",
        "mode",
        "preset_name",
        "renderer",
        "resume_after",
        "shown",
        "started_at",
        "starter",
        "stop_event",
        "stopped",
        "task",
        "workflow",
    )

    def __init__(
        self,
        job_id: str,
        starter: str,
        workflow: Workflow,
        *,
        preset_name: str | None,
        mode: ExecutionMode,
        inputs: Mapping[str, Any],
        loop: LoopConfig,
        audience: frozenset[str],
        error_job: bool,
    ) -> None:
        self.job_id = job_id
        self.starter = starter
        self.workflow = workflow
        self.preset_name = preset_name
        self.mode = mode
        self.inputs = inputs
        self.loop = loop
        self.audience = audience
        self.error_job = error_job
        self.iteration = 1
        self.execution_id = job_id
        self.renderer = JobRenderer(job_id, workflow, preset_name)
        self.started_at: float | None = None
        #: The status last shown, so that a repeated one is not sent again.
        self.shown: JobStatus | None = None
        #: Set by stop_workflow: no further iteration starts.
        self.stopped = False
        self.stop_event = asyncio.Event()
        #: Cleared while paused between two iterations.
        self.held = asyncio.Event()
        self.held.set()
        self.task: asyncio.Task[None] | None = None
        #: The seq of the last event shown before this object followed the job (adopted).
        self.resume_after = 0


def iteration_execution_id(job_id: str, iteration: int) -> str:
    """The execution id of a job's ``iteration`` (1: the job id itself)."""
    return job_id if iteration == 1 else f"{job_id}{_ITERATION_SEP}{iteration}"


class JobService:
    """The job messages of one engine (see the module docstring)."""

    def __init__(self, deps: JobDeps, emit: Callable[[Outgoing], None]) -> None:
        self.deps = deps
        self._emit_outgoing = emit
        self._jobs: dict[str, _Job] = {}
        #: Job ids being set up (checked and reserved before any await).
        self._reserved: set[str] = set()
        self._save_locks: dict[str, asyncio.Lock] = {}
        #: Every job's driver, until it ended (its error workflow started, if any).
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self._ports = flowork_ports(deps.workflows.registry)
        self._handlers: dict[
            str, Callable[[EngineUser, Mapping[str, Any]], Awaitable[list[dict[str, Any]]]]
        ] = {
            "stop_workflow": self._stop,
            "pause_workflow": self._pause,
            "resume_workflow": self._resume,
            "approval_response": self._approval,
            "request_connection_history": self._connection_history,
        }

    # -- the engine's side ---------------------------------------------------------------

    @property
    def is_busy(self) -> bool:
        """A job is running."""
        return bool(self._jobs)

    def running_jobs(self) -> list[str]:
        """Ids of the jobs running in this process."""
        return list(self._jobs)

    async def handle(
        self, user: EngineUser, payload: Mapping[str, Any], *, preset_owner: str | None = None
    ) -> list[dict[str, Any]]:
        """The answers to one job message; bad input raises a ``ServiceError`` (the
        engine answers it as ``{"type": "error", "error"}``) and changes nothing.
        ``preset_owner``: whose preset ``execute_workflow`` runs by name (the engine checked
        the share link); the sender's own when None."""
        kind = payload.get("type")
        if kind == "execute_workflow":
            return await self._execute(user, payload, preset_owner)
        handler = self._handlers.get(kind) if isinstance(kind, str) else None
        if handler is None:
            raise InvalidInput(f"Unknown job message type: {kind}")
        return await handler(user, payload)

    async def drain(self) -> None:
        """Wait until every job running now (and any error workflow it starts) ended."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def start(self) -> None:
        self._closed = False

    async def stop(self) -> None:
        """Stop following jobs (their executions go on in the worker); nothing is left
        running in the background."""
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._jobs.clear()

    # -- execute_workflow ----------------------------------------------------------------

    async def _execute(
        self, user: EngineUser, payload: Mapping[str, Any], preset_owner: str | None = None
    ) -> list[dict[str, Any]]:
        job_id = payload.get("job_id")
        if job_id is None or job_id == "":
            job_id = str(uuid.uuid4())
        elif not isinstance(job_id, str) or not _JOB_ID.fullmatch(job_id):
            raise _invalid("job_id", "must be 1 to 128 of A-Z, a-z, 0-9, _ . : -")
        mode = _mode(payload.get("mode"))
        preset_name = payload.get("preset_name")
        if preset_name is not None and preset_name != "":
            preset_name = check_preset_name(preset_name)
        else:
            preset_name = None
        workflow_data = payload.get("workflow_data")
        if workflow_data is None and preset_name is None:
            raise _invalid("workflow_data", "is required (or a preset_name to run)")
        if workflow_data is not None and not isinstance(workflow_data, Mapping):
            raise _invalid("workflow_data", "must be an object {nodes, connections, ...}")
        await self._start_job(
            job_id,
            _address(user.address),
            workflow_data=workflow_data,
            preset_name=preset_name,
            preset_owner=preset_owner,
            initial_payload=payload.get("initial_payload"),
            mode=mode,
            error_job=False,
        )
        return [
            {
                "type": "execute_workflow_response",
                "status": "Workflow execution started",
                "job_id": job_id,
            }
        ]

    async def _start_job(
        self,
        job_id: str,
        starter: str,
        *,
        workflow_data: Mapping[str, Any] | None,
        preset_name: str | None,
        initial_payload: Any,
        mode: ExecutionMode,
        error_job: bool,
        preset_owner: str | None = None,
    ) -> _Job:
        if self._closed:
            raise Conflict("This engine is shutting down; no job may start")
        if job_id in self._jobs or job_id in self._reserved:
            raise Conflict(f"Job {job_id} already exists")
        self._reserved.add(job_id)
        try:
            if await self.deps.executions.store.get_execution(job_id) is not None:
                raise Conflict(f"Job {job_id} already exists")
            if workflow_data is None:
                assert preset_name is not None
                preset = await self.deps.presets.load(preset_owner or starter, preset_name)
                workflow_data = preset.workflow_data
                if not isinstance(workflow_data, Mapping):
                    raise _invalid("workflow_data", "of the preset is not an object")
            workflow = self._convert(workflow_data, starter, preset_name)
            loop = loop_config(workflow)
            workflow = await self._save(workflow, starter)
            owner = await self.deps.authority.owner_address()
            audience = frozenset({starter} if owner is None else {starter, owner.lower()})
            job = _Job(
                job_id,
                starter,
                workflow,
                preset_name=preset_name,
                mode=mode,
                inputs=_inputs(initial_payload),
                loop=loop,
                audience=audience,
                error_job=error_job,
            )
            subscription = self.deps.bus.subscribe(execution_id=job_id)
            try:
                await self._start_execution(job)
            except BaseException:
                subscription.close()
                raise
            self._jobs[job_id] = job
        finally:
            self._reserved.discard(job_id)
        self._spawn(job, subscription)
        return job

    def _spawn(self, job: _Job, subscription: Subscription) -> None:
        job.task = asyncio.create_task(self._drive(job, subscription), name=f"job:{job.job_id}")
        self._tasks.add(job.task)
        job.task.add_done_callback(self._tasks.discard)

    async def _adopt(self, job_id: str) -> _Job | None:
        """Follow a job of the store that nobody follows here (this process restarted
        while it waited for an approval, say); None when it has ended."""
        executions = await self._job_executions(job_id)
        if not executions or executions[-1].status.finished:
            return None
        last = executions[-1]
        store = self.deps.executions.store
        workflow = await store.get_workflow(
            last.workflow_id, last.workflow_version, include_deleted=True
        )
        starter = None if workflow is None else job_starter(workflow)
        if workflow is None or starter is None:
            return None
        mark = workflow.extra[JOB_MARK]
        preset_name = mark.get("preset_name")
        owner = await self.deps.authority.owner_address()
        job = _Job(
            job_id,
            starter,
            workflow,
            preset_name=preset_name if isinstance(preset_name, str) else None,
            mode=last.mode,
            inputs=last.inputs,
            loop=loop_config(workflow),
            audience=frozenset({starter} if owner is None else {starter, owner.lower()}),
            error_job=last.trigger == ERROR_TRIGGER,
        )
        job.iteration = len(executions)
        job.execution_id = last.id
        job.started_at = executions[0].started_at
        job.shown = flowork_status(last.status)
        subscription = self.deps.bus.subscribe(execution_id=last.id)
        current = await store.get_execution(last.id)
        if current is not None and not current.status.finished:
            # What happened before is not shown again.
            job.resume_after = (await store.resume_state(last.id)).next_seq - 1
        adopted = self._jobs.get(job_id)
        if adopted is not None or current is None or current.status.finished:
            subscription.close()
            return adopted
        self._jobs[job_id] = job
        self._spawn(job, subscription)
        return job

    def _convert(
        self, workflow_data: Mapping[str, Any], starter: str, preset_name: str | None
    ) -> Workflow:
        workflow_id = (
            f"flowork:{starter}:preset:{preset_name}"
            if preset_name is not None
            else f"flowork:{starter}:unsaved"
        )
        try:
            workflow = workflow_from_flowork(
                dict(workflow_data),
                workflow_id=workflow_id,
                name=preset_name or "Unsaved workflow",
                owner=starter,
                ports=self._ports,
            )
        except FloworkFormatError as error:
            raise InvalidInput(f"Invalid workflow_data: {error}") from None
        mark = {"starter": starter, "preset_name": preset_name}
        return dataclasses.replace(workflow, extra={**workflow.extra, JOB_MARK: mark})

    async def _save(self, workflow: Workflow, starter: str) -> Workflow:
        """The stored version of ``workflow``: the latest one when nothing changed, else
        a new version (checked first: an invalid graph stores nothing)."""
        self.deps.workflows.check(workflow)
        lock = self._save_locks.setdefault(workflow.id, asyncio.Lock())
        async with lock:
            store = self.deps.executions.store
            latest = await store.get_workflow(workflow.id)
            if latest is not None and encode_definition(latest) == encode_definition(workflow):
                return latest
            if latest is None and not await store.workflow_exists(workflow.id):
                with contextlib.suppress(Conflict):
                    return await self.deps.workflows.create(workflow, actor=starter)
            return await self.deps.workflows.update(workflow.id, workflow, actor=starter)

    async def _start_execution(self, job: _Job) -> Execution:
        try:
            return await self.deps.executions.start(
                job.workflow.id,
                job.inputs,
                version=job.workflow.version,
                mode=job.mode,
                trigger=ERROR_TRIGGER if job.error_job else TRIGGER,
                execution_id=job.execution_id,
            )
        except ConflictError:
            raise Conflict(f"Job {job.job_id}: execution {job.execution_id} exists") from None

    # -- following a job -----------------------------------------------------------------

    def _send(self, job: _Job, message: dict[str, Any]) -> None:
        self._emit_outgoing(Outgoing(message, job.audience))

    def _show(self, job: _Job, status: JobStatus, *, force: bool = False) -> None:
        if status == job.shown and not force:
            return
        job.shown = status
        self._send(
            job,
            status_update(
                job.job_id,
                status,
                start_time=job.started_at,
                preset_name=job.preset_name,
                active_node_id=job.renderer.active_node_id,
            ),
        )

    async def _drive(self, job: _Job, subscription: Subscription) -> None:
        """Follow the job's executions to its end; start the loop's next iterations."""
        try:
            outcome = await self._follow(job, subscription, job.resume_after)
            while (
                outcome.status is ExecutionStatus.SUCCEEDED
                and job.iteration < job.loop.runs
                and not job.stopped
            ):
                if not await self._between_iterations(job):
                    outcome = _Outcome(
                        ExecutionStatus.CANCELLED, self.deps.clock(), error="stopped"
                    )
                    break
                job.iteration += 1
                job.execution_id = iteration_execution_id(job.job_id, job.iteration)
                subscription = self.deps.bus.subscribe(execution_id=job.execution_id)
                try:
                    await self._start_execution(job)
                except Exception as error:
                    subscription.close()
                    outcome = _Outcome(ExecutionStatus.FAILED, self.deps.clock(), _text(error))
                    break
                except BaseException:
                    subscription.close()
                    raise
                outcome = await self._follow(job, subscription)
            if not outcome.status.finished:
                return  # the bus closed under a running job: the platform stops
            self._finish(job, outcome)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("job %s: following it failed", job.job_id)
            outcome = _Outcome(ExecutionStatus.FAILED, self.deps.clock(), "internal error")
            self._finish(job, outcome)
        finally:
            self._jobs.pop(job.job_id, None)
        if (
            outcome.status is ExecutionStatus.FAILED
            and job.mode is ExecutionMode.EXECUTE
            and not job.error_job
        ):
            await self._error_workflow(job, outcome)

    async def _between_iterations(self, job: _Job) -> bool:
        """Wait the loop's delay (and while paused); False when the job was stopped."""
        delay = job.loop.delay_seconds(self.deps.rng.random)
        self._send(
            job,
            log_message(
                job.job_id,
                f"Iteration {job.iteration} of {job.loop.runs} done; next in {delay:.3g} s",
                at=self.deps.clock(),
            ),
        )
        if delay > 0 and not job.stopped:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await job.stop_event.wait()
        # Paused between two iterations: wait for resume (or stop, which opens it too).
        await job.held.wait()
        return not job.stopped

    async def _follow(self, job: _Job, subscription: Subscription, after_seq: int = 0) -> _Outcome:
        """Render one execution's events, from ``after_seq`` on, in order, until it ends.

        A consumer that fell behind (``Lagged``) or sees a gap reads the missed events from
        the store. Events are stored at the next checkpoint, so some may not be there yet:
        the later events are rendered meanwhile, and the gap is filled at the next read
        (at the latest at the end: the events that end a run are published once stored).
        """
        job.renderer.begin(job.inputs)
        done = after_seq  # every event up to this seq was handled
        ahead: set[int] = set()  # handled events beyond a gap
        try:
            async for item in subscription:
                if isinstance(item, Lagged):
                    batch = await self._stored(job, done)
                elif item.seq > done + 1:
                    batch = [*await self._stored(job, done, before=item.seq), item]
                else:
                    batch = [item]
                for event in batch:
                    if event.seq <= done or event.seq in ahead:
                        continue
                    ahead.add(event.seq)
                    while done + 1 in ahead:
                        done += 1
                        ahead.discard(done)
                    outcome = self._on_event(job, event)
                    if outcome is not None:
                        return outcome
        finally:
            subscription.close()
        # The bus closed (the platform stops): the store says how far it got.
        execution = await self.deps.executions.store.get_execution(job.execution_id)
        status = execution.status if execution is not None else ExecutionStatus.FAILED
        error = execution.error.message if execution and execution.error else "engine stopped"
        return _Outcome(status, self.deps.clock(), error)

    async def _stored(self, job: _Job, after_seq: int, before: int | None = None) -> list[Event]:
        events = await self.deps.executions.store.events(job.execution_id, after_seq=after_seq)
        return [event for event in events if before is None or event.seq < before]

    def _on_event(self, job: _Job, event: Event) -> _Outcome | None:
        kind = event.type
        if kind is EventType.EXECUTION_STARTED:
            if job.iteration == 1:
                job.started_at = event.timestamp
                self._show(job, "RUNNING")
            else:
                self._send(
                    job,
                    log_message(
                        job.job_id,
                        f"Iteration {job.iteration} of {job.loop.runs} started",
                        at=event.timestamp,
                    ),
                )
            return None
        if kind is EventType.EXECUTION_STATUS:
            status = event.data.get("status")
            with contextlib.suppress(ValueError):
                self._show(job, flowork_status(ExecutionStatus(str(status))))
            return None
        if kind is EventType.EXECUTION_FINISHED:
            return _finished(event)
        for message in job.renderer.render(event):
            self._send(job, message)
        return None

    def _finish(self, job: _Job, outcome: _Outcome) -> None:
        status = flowork_status(outcome.status)
        active = outcome.failed_node_id if outcome.status is ExecutionStatus.FAILED else None
        if job.started_at is None:
            job.started_at = outcome.at
        self._send(
            job,
            status_update(
                job.job_id,
                status,
                start_time=job.started_at,
                end_time=outcome.at,
                preset_name=job.preset_name,
                active_node_id=active,
                error=outcome.error if status != "SUCCEEDED" else None,
                result=outcome.outputs,
            ),
        )
        job.shown = status
        level = {"SUCCEEDED": "SUCCESS", "FAILED": "ERROR"}.get(status, "WARN")
        text = f"Workflow {status.lower()}" + (f": {outcome.error}" if outcome.error else "")
        self._send(job, log_message(job.job_id, text, level=level, at=outcome.at))

    async def _error_workflow(self, job: _Job, outcome: _Outcome) -> None:
        """Run the starter's global error workflow preset, if their settings ask for it."""
        try:
            settings = await self.deps.settings(job.starter)
            preset = settings.get("global_error_workflow_preset")
            if not settings.get("global_error_handler_enabled") or not preset:
                return
            error_job = await self._start_job(
                str(uuid.uuid4()),
                job.starter,
                workflow_data=None,
                preset_name=str(preset),
                initial_payload={
                    "job_id": job.job_id,
                    "error": outcome.error,
                    "failed_node_id": outcome.failed_node_id,
                    "preset_name": job.preset_name,
                },
                mode=ExecutionMode.EXECUTE,
                error_job=True,
            )
            text = f"Global error workflow {preset!r} started as job {error_job.job_id}"
            self._send(job, log_message(job.job_id, text, level="WARN", at=self.deps.clock()))
        except Exception as error:
            text = f"The global error workflow did not start: {_text(error)}"
            self._send(job, log_message(job.job_id, text, level="ERROR", at=self.deps.clock()))

    # -- stop, pause, resume -------------------------------------------------------------

    async def _stop(self, user: EngineUser, payload: Mapping[str, Any]) -> list[dict[str, Any]]:
        job = await self._target(user, payload)
        job.stopped = True
        job.stop_event.set()
        job.held.set()
        execution = await self.deps.executions.store.get_execution(job.execution_id)
        if execution is not None and not execution.status.finished:
            with contextlib.suppress(Conflict):  # it ended meanwhile
                await self.deps.executions.cancel(
                    job.execution_id, reason=f"stopped by {user.address}"
                )
        return [{"type": "stop_workflow_response", "job_id": job.job_id, "status": "STOPPED"}]

    async def _pause(self, user: EngineUser, payload: Mapping[str, Any]) -> list[dict[str, Any]]:
        job = await self._target(user, payload)
        if await self._between(job):
            job.held.clear()
            self._show(job, "PAUSED")
        else:
            await self.deps.executions.pause(job.execution_id)
        return [{"type": "pause_workflow_response", "job_id": job.job_id, "status": "PAUSED"}]

    async def _resume(self, user: EngineUser, payload: Mapping[str, Any]) -> list[dict[str, Any]]:
        job = await self._target(user, payload)
        if not job.held.is_set():
            job.held.set()
            self._show(job, "RUNNING")
        else:
            await self.deps.executions.resume(job.execution_id)
        return [{"type": "resume_workflow_response", "job_id": job.job_id, "status": "RUNNING"}]

    async def _between(self, job: _Job) -> bool:
        """The job waits between two iterations (its last execution has ended)."""
        execution = await self.deps.executions.store.get_execution(job.execution_id)
        return execution is not None and execution.status.finished

    async def _target(self, user: EngineUser, payload: Mapping[str, Any]) -> _Job:
        """The running job a stop/pause/resume acts on: ``job_id``, else the caller's only
        running job."""
        job_id = payload.get("job_id")
        address = _address(user.address)
        if job_id is None or job_id == "":
            mine = [job for job in self._jobs.values() if job.starter == address]
            if len(mine) != 1:
                which = "no running job" if not mine else f"{len(mine)} running jobs"
                raise InvalidInput(f"You have {which}; name the job_id to act on")
            return mine[0]
        if not isinstance(job_id, str):
            raise _invalid("job_id", "must be a string")
        job = self._jobs.get(job_id)
        if job is None:
            starter = await self._stored_starter(job_id)
            if starter is None:
                raise NotFound("job", job_id)
            await self._require_may_act(address, starter, job_id)
            job = await self._adopt(job_id)
            if job is None:
                raise Conflict(f"Job {job_id} is not running")
            return job
        await self._require_may_act(address, job.starter, job_id)
        return job

    async def _require_may_act(self, address: str, starter: str, job_id: str) -> None:
        if address == starter:
            return
        owner = await self.deps.authority.owner_address()
        if owner is not None and owner.lower() == address:
            return
        raise Forbidden(f"Only the user who started job {job_id} or the engine owner may do this")

    async def _stored_starter(self, job_id: str) -> str | None:
        """The starter of a job known to the store (running here or not); None if none."""
        store = self.deps.executions.store
        execution = await store.get_execution(job_id)
        if execution is None:
            return None
        workflow = await store.get_workflow(
            execution.workflow_id, execution.workflow_version, include_deleted=True
        )
        return None if workflow is None else job_starter(workflow)

    async def _job_executions(self, job_id: str) -> list[Execution]:
        """The job's executions in order (one per loop iteration that started)."""
        store = self.deps.executions.store
        found: list[Execution] = []
        while len(found) < MAX_ITERATIONS:
            execution = await store.get_execution(iteration_execution_id(job_id, len(found) + 1))
            if execution is None:
                break
            found.append(execution)
        return found

    async def _visible_job(self, user: EngineUser, payload: Mapping[str, Any]) -> str:
        """The payload's ``job_id``, once the caller may see that job."""
        job_id = _required(payload, "job_id")
        job = self._jobs.get(job_id)
        starter = job.starter if job is not None else await self._stored_starter(job_id)
        if starter is None:
            raise NotFound("job", job_id)
        await self._require_may_act(_address(user.address), starter, job_id)
        return job_id

    # -- approvals, history --------------------------------------------------------------

    async def _approval(self, user: EngineUser, payload: Mapping[str, Any]) -> list[dict[str, Any]]:
        job_id = await self._visible_job(user, payload)
        node_id = _required(payload, "node_id")
        decision = payload.get("decision")
        if not isinstance(decision, str) or decision.upper() not in ("APPROVED", "REJECTED"):
            raise _invalid("decision", "must be APPROVED or REJECTED")
        # Subscribed before deciding, so that a job nobody follows here since a restart
        # shows how it goes on.
        job = self._jobs.get(job_id) or await self._adopt(job_id)
        if job is not None:
            execution_id = job.execution_id
        else:
            executions = await self._job_executions(job_id)
            execution_id = executions[-1].id
        comment = payload.get("comment")
        await self.deps.executions.approve(
            execution_id,
            node_id,
            decision.upper() == "APPROVED",
            by=_address(user.address),
            comment=comment if isinstance(comment, str) else None,
        )
        return [
            {
                "type": "approval_recorded",
                "job_id": job_id,
                "node_id": node_id,
                "decision": decision.upper(),
            }
        ]

    async def _connection_history(
        self, user: EngineUser, payload: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        job_id = await self._visible_job(user, payload)
        connection_id = _required(payload, "connection_id")
        history: list[Any] = []
        for execution in await self._job_executions(job_id):
            for event in await self.deps.executions.store.events(execution.id):
                if (
                    event.type is EventType.EDGE_TRAVERSED
                    and event.data.get("edge_id") == connection_id
                ):
                    history.append(event.data.get("value"))
        return [
            {
                "type": "connection_history_response",
                "job_id": job_id,
                "connection_id": connection_id,
                "history": history,
            }
        ]


# -- helpers --------------------------------------------------------------------------------


def _text(error: Exception) -> str:
    return error.message if isinstance(error, ServiceError) else str(error)


def _finished(event: Event) -> _Outcome:
    data = event.data
    try:
        status = ExecutionStatus(str(data.get("status")))
    except ValueError:
        status = ExecutionStatus.FAILED
    error = data.get("error")
    message: str | None = None
    failed_node: str | None = None
    if isinstance(error, Mapping):
        message = str(error.get("message"))
        details = error.get("details")
        if isinstance(details, Mapping) and isinstance(details.get("node_id"), str):
            failed_node = details["node_id"]
    elif error is not None:
        message = str(error)
    return _Outcome(status, event.timestamp, message, failed_node, data.get("outputs"))


def _inputs(initial_payload: Any) -> dict[str, Any]:
    """The start nodes' input: an object gives its keys by port name (and itself on the
    default port ``value``); anything else arrives on ``value``."""
    if initial_payload is None:
        return {}
    if isinstance(initial_payload, Mapping):
        return dict(initial_payload)
    return {"value": initial_payload}


def _mode(value: object) -> ExecutionMode:
    if value is None or value == "":
        return ExecutionMode.EXECUTE
    if isinstance(value, str):
        upper = value.strip().upper()
        if upper == "EXECUTE":
            return ExecutionMode.EXECUTE
        if upper == "SIMULATE":
            return ExecutionMode.SIMULATE
    raise _invalid("mode", "must be EXECUTE or SIMULATE")


def _address(address: str) -> str:
    try:
        return normalize_address(address)
    except InvalidSignature:
        raise _invalid("address", "is not an address") from None


def _required(payload: Mapping[str, Any], name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value.strip():
        raise _invalid(name, "is required (a non-empty string)")
    return value


def _invalid(where: str, problem: str) -> InvalidInput:
    return InvalidInput(f"Invalid job message: {where} {problem}", [ProblemDetail(problem, where)])
