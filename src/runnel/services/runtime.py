"""What the platform adds around the engine's runs: ``$kv``, deferred flowlets, flowlet
output mapping, channel notifications.

``RuntimeExecutor`` is the engine's ``Executor`` with two additions, both without touching
the engine:

- Before each run it sets the run's context (its workflow and, when the workflow's
  expressions read ``$kv``, a snapshot of the KV scope of the workflow) in a context
  variable. The executor's tasks inherit it, and ``ContextKv`` (the ``$kv`` the executor
  finds in ``services.extra["kv"]``) reads it, so each execution sees its own scope.
- Its node types are wrapped (``_FlowletStep``) to honour two flowlet fields kept in
  ``node.extra["flow8"]``: ``deferAfterMs`` parks the node (a timer wait, shown
  ``DEFERRED``) before it first runs, and unless ``skipOutputMapping`` a successful node's
  outputs are written to the KV scope under ``<flow name>.<ref>`` (and into the run's
  snapshot, so later flowlets of the same run read them).

When a run ends, the channels a flow names for the end (``notify.onFinish``) or a failure
(``notify.onFail``) are told, in the background.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from runnel.engine.control import ExecutionControl
from runnel.engine.executor import Executor
from runnel.engine.expressions import ExpressionEngine
from runnel.engine.node import NodeContext, NodeManifest, NodeOutput, NodeType
from runnel.engine.registry import NodeRegistry
from runnel.engine.run import ExecutionResult, RunRequest
from runnel.engine.signals import NodeFailure, Suspend
from runnel.model.execution import ExecutionStatus
from runnel.model.flow8 import PlayState, error_code, play_state
from runnel.model.workflow import Node, Workflow
from runnel.services.channels import ChannelService, DeliveryFailed, Message
from runnel.services.kv import KvService, KvView, workflow_scope

__all__ = ["ContextKv", "FlowRuntime", "RunContext", "RuntimeExecutor", "wrap_registry"]

log = logging.getLogger(__name__)

_FLOW8: Final = "flow8"
_CACHE_SIZE: Final = 512


@dataclass(slots=True)
class RunContext:
    """One execution's view of the platform."""

    workflow: Workflow
    kv_scope: str | None
    kv: KvView | None


_CURRENT: contextvars.ContextVar[RunContext | None] = contextvars.ContextVar(
    "runnel_run_context", default=None
)
_EMPTY_VIEW: Final = KvView({})


def current_run() -> RunContext | None:
    """The context of the execution whose task is running (None outside one)."""
    return _CURRENT.get()


class ContextKv(Mapping[str, Any]):
    """``$kv``: the KV snapshot of the execution whose task reads it."""

    __slots__ = ()

    @staticmethod
    def _view() -> KvView:
        context = _CURRENT.get()
        return context.kv if context is not None and context.kv is not None else _EMPTY_VIEW

    def __getitem__(self, name: str) -> Any:
        return self._view()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._view())

    def __len__(self) -> int:
        return len(self._view())


def _meta(node: Node) -> Mapping[str, Any] | None:
    meta = node.extra.get(_FLOW8)
    return meta if isinstance(meta, Mapping) else None


class FlowRuntime:
    """The services the wrapped runs call on: KV and channels."""

    def __init__(
        self,
        kv: KvService,
        channels: ChannelService,
        expressions: ExpressionEngine,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.kv = kv
        self.channels = channels
        self.expressions = expressions
        self._clock = clock
        self._reads_kv: OrderedDict[tuple[str, int], bool] = OrderedDict()
        self._background: set[asyncio.Task[None]] = set()

    def reads_kv(self, workflow: Workflow) -> bool:
        """Whether any expression of ``workflow`` uses ``$kv`` (cached per version)."""
        key = (workflow.id, workflow.version)
        cached = self._reads_kv.get(key) if workflow.version > 0 else None
        if cached is not None:
            return cached
        found = any(
            reference.root == "kv"
            for node in workflow.nodes
            for value in (node.config, node.filters)
            if value is not None
            for reference in self.expressions.find_references(value)
        )
        if workflow.version > 0:
            self._reads_kv[key] = found
            if len(self._reads_kv) > _CACHE_SIZE:
                self._reads_kv.popitem(last=False)
        return found

    async def context_for(self, workflow: Workflow) -> RunContext:
        scope = workflow_scope(workflow)
        view = None
        if scope is not None and self.reads_kv(workflow):
            view = await self.kv.view(scope)
        return RunContext(workflow, scope, view)

    async def record_output(self, node: Node, outputs: NodeOutput) -> None:
        """Write a flowlet's outputs to the KV scope (``<flow name>.<ref>``)."""
        context = _CURRENT.get()
        if context is None or context.kv_scope is None:
            return
        key = f"{context.workflow.name}.{node.name or node.id}"
        value = dict(outputs)
        if context.kv is not None:
            context.kv.set(key, value)
        try:
            skipped = await self.kv.write_outputs(context.kv_scope, {key: value})
        except Exception:  # bookkeeping: the flowlet itself succeeded
            log.exception("could not write the output of %s to the KV store", key)
            return
        if skipped:
            log.warning("output of %s not written to the KV store: over the size limit", key)

    async def notify(
        self, channel: str, message: Mapping[str, Any], ctx: NodeContext
    ) -> Mapping[str, Any]:
        """``NodeServices.notify``: deliver through ``channel`` for the running workflow."""
        context = _CURRENT.get()
        workflow = context.workflow if context is not None else None
        if workflow is None or workflow.id != ctx.workflow_id:
            loaded = await self.kv.store.get_workflow(ctx.workflow_id, include_deleted=True)
            if loaded is None:
                raise NodeFailure(f"workflow {ctx.workflow_id!r} not found", kind="not_found")
            workflow = loaded
        data = message.get("data")
        try:
            delivery = await self.channels.send_for(
                workflow,
                channel,
                Message(
                    title=str(message.get("title") or ""),
                    text=str(message.get("text") or ""),
                    data=data if isinstance(data, Mapping) else {"value": data},
                ),
            )
        except DeliveryFailed as exc:
            raise NodeFailure(exc.message, kind="delivery") from None
        return {"channel": delivery.channel_id, "type": delivery.type, "detail": delivery.detail}

    def play_ended(self, workflow: Workflow, result: ExecutionResult) -> None:
        """Tell the flow's notify channels about a play that ended (in the background)."""
        meta = workflow.extra.get(_FLOW8)
        notify = meta.get("notify") if isinstance(meta, Mapping) else None
        if not isinstance(notify, Mapping):
            return
        channels = list(notify.get("onFinish") or ())
        if result.status is not ExecutionStatus.SUCCEEDED:
            channels += [c for c in notify.get("onFail") or () if c not in channels]
        if not channels:
            return
        runs = [(run.status, run.wait) for run in result.node_runs.values()]
        state = play_state(result.status, runs)
        task = asyncio.create_task(self._tell(workflow, result, state, channels))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _tell(
        self, workflow: Workflow, result: ExecutionResult, state: PlayState, channels: list[str]
    ) -> None:
        error = result.error
        text = f"Play {result.execution_id} of flow {workflow.name!r} ended {state.value}"
        if error is not None:
            text += f": {error_code(error.kind)}: {error.message}"
        message = Message(
            title=f"{workflow.name}: {state.value}",
            text=text,
            data={
                "playId": result.execution_id,
                "flowId": workflow.id,
                "state": state.value,
                "error": None if error is None else error.message,
            },
        )
        for channel in channels:
            try:
                await self.channels.send_for(workflow, str(channel), message)
            except DeliveryFailed as exc:
                log.warning("notifying channel %s failed: %s", channel, exc.message)
            except Exception:
                log.exception("notifying channel %s failed", channel)

    async def drain(self) -> None:
        """Wait for notifications still being sent."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)


class _FlowletStep:
    """A node type with flowlet behaviour: defer before the first run, map outputs to KV."""

    __slots__ = ("_inner", "_runtime", "manifest")

    def __init__(self, inner: NodeType, runtime: Callable[[], FlowRuntime | None]) -> None:
        self._inner = inner
        self._runtime = runtime
        self.manifest: NodeManifest = inner.manifest

    def for_node(self, node: Node) -> NodeType:
        """The type that runs ``node`` (the executor's plan asks once per node): this
        wrapper for a flowlet with ``flow8`` metadata, else the wrapped type itself, so
        that a plain node costs no extra call per run."""
        return self if _meta(node) is not None else self._inner

    async def run(self, ctx: NodeContext) -> NodeOutput:
        meta = _meta(ctx.node)
        if meta is None:
            return await self._inner.run(ctx)
        defer = meta.get("deferAfterMs")
        if isinstance(defer, int | float) and not isinstance(defer, bool) and defer > 0:
            wait = ctx.wait_state
            if not (wait and wait.get("reason") == "defer"):
                raise Suspend(
                    {"kind": "timer", "due_at": time.time() + defer / 1000.0, "reason": "defer"}
                )
            due = wait.get("due_at")
            if isinstance(due, int | float) and due > time.time():
                raise Suspend(dict(wait))  # woken early: keep the first deadline
            ctx.wait_state = None  # the wait was the deferral, not the node's own
        outputs = await self._inner.run(ctx)
        runtime = self._runtime()
        if runtime is not None and not ctx.simulate and not meta.get("skipOutputMapping"):
            await runtime.record_output(ctx.node, outputs)
        return outputs


def wrap_registry(
    registry: NodeRegistry, runtime: Callable[[], FlowRuntime | None]
) -> NodeRegistry:
    """A registry of the same types (and aliases) with flowlet behaviour."""
    return NodeRegistry(_FlowletStep(node_type, runtime) for node_type in registry)


class RuntimeExecutor(Executor):
    """The engine's executor with the platform's run context (see the module docstring).
    Set ``runtime`` once the services exist; until then it runs as the plain executor."""

    def __init__(self, registry: NodeRegistry, *args: Any, **kwargs: Any) -> None:
        self.runtime: FlowRuntime | None = None
        #: The ``{{vars.NAME}}`` of a run that brings none (the runner passes none): e.g.
        #: ``runnel.services.core_engine.jobs.JobVariables``, a Flowork job's starter's.
        self.variables: Callable[[Workflow], Awaitable[Mapping[str, Any]]] | None = None
        super().__init__(wrap_registry(registry, lambda: self.runtime), *args, **kwargs)

    async def run(
        self, request: RunRequest, control: ExecutionControl | None = None
    ) -> ExecutionResult:
        if self.variables is not None and not request.variables and request.depth == 0:
            found = await self.variables(request.workflow)
            if found:
                request = dataclasses.replace(request, variables=found)
        runtime = self.runtime
        context = await runtime.context_for(request.workflow) if runtime is not None else None
        token = _CURRENT.set(context)
        try:
            result = await super().run(request, control)
        finally:
            _CURRENT.reset(token)
        if runtime is not None and result.status.finished and request.depth == 0:
            runtime.play_ended(request.workflow, result)
        return result
