"""flow8 flows: an ordered list of flowlets, stored as a canonical workflow (a chain).

A flow is a workflow whose nodes are its flowlets in order (node id = flowlet id, node name
= ``ref``, node type = the ``appId`` resolved through the registry, config = ``args``),
joined by one edge between each flowlet and the next. The flow's own settings (category,
enabled, notify channels, timestamps) live in ``workflow.extra["flow8"]``; a flowlet's
settings that the canonical node has no field for (``appId`` as written, ``deferAfterMs``,
``skipOutputMapping``, ``onError: skip``) in ``node.extra``. So a flow saved through flow8
reads back as it went in, and the same workflow shows in the Flow Engine API.

The chain's edges use ports the node types declare (``chain_ports``): the previous node's
``value`` port (else ``body``, ``data``, ``decision``..., else its first port) into the next
node's ``value`` port (else its first input). ``$prev`` is that value; ``$node.<ref>`` has
every port of an earlier flowlet.

``onError``: ``fail`` stops the play; ``continue`` and ``skip`` make the node continue on
its ``error`` port, which a second edge also carries to the next flowlet, so the chain goes
on; ``skip`` shows the failed layer as ``SKIP`` (``runnel.model.flow8.layer_state``).
"""

from __future__ import annotations

import builtins
import dataclasses
import math
import re
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from runnel.engine.executor import ERROR_PORT
from runnel.engine.node import NodeManifest
from runnel.engine.registry import NodeRegistry
from runnel.model.execution import Execution
from runnel.model.workflow import (
    DEFAULT_PORT,
    Edge,
    Node,
    OnError,
    Position,
    RetryPolicy,
    Workflow,
    WorkflowSettings,
)
from runnel.services.access import Access, Action, Resource
from runnel.services.accounts import Principal
from runnel.services.errors import Conflict, InvalidInput, NotFound, ProblemDetail
from runnel.services.executions import ExecutionService
from runnel.services.workflows import WorkflowService
from runnel.store import SqlStore

__all__ = [
    "FLOW8_KEY",
    "ExecutionSpec",
    "Flow",
    "FlowDisabled",
    "FlowService",
    "FlowSpec",
    "FlowletSpec",
    "NotifySpec",
    "RetrySpec",
    "chain_ports",
    "flow_from_workflow",
    "flow_resource",
    "is_flow8_chain",
    "workflow_from_flow",
]

#: The key of ``workflow.extra`` (and ``node.extra``) holding flow8's own fields.
FLOW8_KEY: Final = "flow8"
ON_ERROR_VALUES: Final = ("fail", "continue", "skip")
_REF: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_\-]{0,99}")
_SOURCE_PREFERENCE: Final = ("value", "body", "data", "decision", "parsed", "message", "outputs")
MAX_NAME_CHARS: Final = 200
MAX_FLOWLETS: Final = 500


class FlowDisabled(Conflict):
    """A disabled flow was asked to run."""

    code = "FLOW_DISABLED"


@dataclass(frozen=True, slots=True)
class RetrySpec:
    max_retries: int = 0
    initial_delay_ms: int = 0
    max_delay_ms: int | None = None
    backoff_multiplier: float = 2.0
    #: Fraction of each delay added or removed at random.
    jitter: float = 0.0


@dataclass(frozen=True, slots=True)
class FlowletSpec:
    """One flowlet (a "layer"). ``id`` is None for a new one."""

    ref: str
    app_id: str
    args: Mapping[str, Any] = field(default_factory=dict)
    filters: Any = None
    timeout_ms: int | None = None
    retry: RetrySpec | None = None
    on_error: str = "fail"
    defer_after_ms: int | None = None
    needs_approval: bool = False
    skip_output_mapping: bool = False
    id: str | None = None


@dataclass(frozen=True, slots=True)
class NotifySpec:
    """Channels told when a play fails, and when it ends whatever the outcome."""

    on_fail: tuple[str, ...] = ()
    on_finish: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ExecutionSpec:
    timeout_ms: int | None = None
    max_parallel: int | None = None


@dataclass(frozen=True, slots=True)
class FlowSpec:
    name: str
    description: str = ""
    category: str = "general"
    enabled: bool = True
    group_id: str | None = None
    flowlets: tuple[FlowletSpec, ...] = ()
    notify: NotifySpec = field(default_factory=NotifySpec)
    execution: ExecutionSpec = field(default_factory=ExecutionSpec)


@dataclass(frozen=True, slots=True)
class Flow:
    """A stored flow: its spec with ids, owner, version and times."""

    id: str
    spec: FlowSpec
    owner: str | None
    version: int
    created_at: float | None = None
    updated_at: float | None = None
    #: False for a workflow made elsewhere whose graph is not a chain (read-only here).
    chain: bool = True


def flow_resource(workflow: Workflow) -> Resource:
    """A flow (and its plays, schedules) as ``Access`` sees it."""
    return Resource("flow", workflow.id, owner=workflow.owner, group_id=workflow.group)


# -- conversion -----------------------------------------------------------------------------


def chain_ports(
    previous: NodeManifest, previous_config: Mapping[str, Any], following: NodeManifest
) -> tuple[str, str] | None:
    """(source port, target port) of the edge from a flowlet to the next; None when the
    next node type takes no input (it can only come first)."""
    inputs = following.input_port_names()
    if following.dynamic_inputs or DEFAULT_PORT in inputs:
        target = DEFAULT_PORT
    elif inputs:
        target = inputs[0]
    else:
        return None
    if previous.dynamic_outputs:
        return DEFAULT_PORT, target
    try:
        outputs = previous.output_port_names(previous_config)
    except Exception:  # a config the port function rejects: validation reports it
        outputs = tuple(port.name for port in previous.outputs)
    for name in _SOURCE_PREFERENCE:
        if name in outputs:
            return name, target
    return (outputs[0] if outputs else DEFAULT_PORT), target


def _retry_policy(retry: RetrySpec | None) -> RetryPolicy | None:
    if retry is None:
        return None
    return RetryPolicy(
        max_attempts=retry.max_retries + 1,
        delay_ms=retry.initial_delay_ms,
        backoff_multiplier=retry.backoff_multiplier,
        max_delay_ms=retry.max_delay_ms,
        jitter=retry.jitter,
    )


def workflow_from_flow(
    flow_id: str,
    spec: FlowSpec,
    registry: NodeRegistry,
    *,
    owner: str | None,
    created_at: float | None,
    updated_at: float | None,
) -> Workflow:
    """The canonical workflow of a flow whose flowlets all have ids. ``InvalidInput`` for
    an unknown ``appId`` (listing the known ones) or a flowlet that cannot be chained."""
    problems: list[ProblemDetail] = []
    nodes: list[Node] = []
    manifests: list[NodeManifest] = []
    for index, flowlet in enumerate(spec.flowlets):
        node_type = registry.find(flowlet.app_id)
        if node_type is None:
            known = sorted({name for m in registry.manifests() for name in (m.type, *m.aliases)})
            problems.append(
                ProblemDetail(
                    f"unknown appId {flowlet.app_id!r}; known: {', '.join(known)}",
                    f"flowlets[{index}].appId",
                    "unknown_app",
                )
            )
            continue
        manifest = node_type.manifest
        manifests.append(manifest)
        extra: dict[str, Any] = {"appId": flowlet.app_id}
        if flowlet.defer_after_ms:
            extra["deferAfterMs"] = flowlet.defer_after_ms
        if flowlet.skip_output_mapping:
            extra["skipOutputMapping"] = True
        if flowlet.on_error == "skip":
            extra["onError"] = "skip"
        assert flowlet.id is not None
        nodes.append(
            Node(
                id=flowlet.id,
                type=manifest.type,
                name=flowlet.ref,
                config=dict(flowlet.args),
                position=Position(x=float(index * 240), y=0.0),
                retry=_retry_policy(flowlet.retry),
                timeout_ms=flowlet.timeout_ms,
                on_error=OnError.STOP if flowlet.on_error == "fail" else OnError.CONTINUE,
                needs_approval=flowlet.needs_approval,
                filters=flowlet.filters,
                extra={FLOW8_KEY: extra},
            )
        )
    if problems:
        raise InvalidInput("invalid flow: " + "; ".join(map(str, problems)), problems)
    edges: list[Edge] = []
    for index in range(len(nodes) - 1):
        source, target = nodes[index], nodes[index + 1]
        ports = chain_ports(manifests[index], source.config, manifests[index + 1])
        if ports is None:
            problems.append(
                ProblemDetail(
                    f"appId {spec.flowlets[index + 1].app_id!r} takes no input, so it can only"
                    " be the first flowlet",
                    f"flowlets[{index + 1}].appId",
                    "not_chainable",
                )
            )
            continue
        source_port, target_port = ports
        edges.append(
            Edge(f"{source.id}->{target.id}", source.id, target.id, source_port, target_port)
        )
        if source.on_error is OnError.CONTINUE:
            edges.append(
                Edge(
                    f"{source.id}->{target.id}:{ERROR_PORT}",
                    source.id,
                    target.id,
                    ERROR_PORT,
                    target_port,
                )
            )
    if problems:
        raise InvalidInput("invalid flow: " + "; ".join(map(str, problems)), problems)
    settings = WorkflowSettings(
        max_parallel_nodes=spec.execution.max_parallel or WorkflowSettings().max_parallel_nodes,
        max_execution_time_ms=spec.execution.timeout_ms,
    )
    meta: dict[str, Any] = {
        "category": spec.category,
        "enabled": spec.enabled,
        "notify": {"onFail": list(spec.notify.on_fail), "onFinish": list(spec.notify.on_finish)},
        "createdAt": created_at,
        "updatedAt": updated_at,
        "chain": True,
    }
    return Workflow(
        id=flow_id,
        name=spec.name,
        description=spec.description,
        nodes=tuple(nodes),
        edges=tuple(edges),
        settings=settings,
        owner=owner,
        group=spec.group_id,
        extra={FLOW8_KEY: meta},
    )


def is_flow8_chain(workflow: Workflow) -> bool:
    """Whether every edge joins a node to the next one in node order (a flow8 chain)."""
    position = {node.id: index for index, node in enumerate(workflow.nodes)}
    return all(
        position.get(edge.target, -1) == position.get(edge.source, -2) + 1
        for edge in workflow.edges
    )


def _flowlet_from_node(node: Node) -> FlowletSpec:
    extra = node.extra.get(FLOW8_KEY)
    meta: Mapping[str, Any] = extra if isinstance(extra, Mapping) else {}
    if meta.get("onError") == "skip" or node.on_error is OnError.SKIP:
        on_error = "skip"
    elif node.on_error is OnError.CONTINUE:
        on_error = "continue"
    else:
        on_error = "fail"
    retry = None
    if node.retry is not None:
        retry = RetrySpec(
            max_retries=max(node.retry.max_attempts - 1, 0),
            initial_delay_ms=node.retry.delay_ms,
            max_delay_ms=node.retry.max_delay_ms,
            backoff_multiplier=node.retry.backoff_multiplier,
            jitter=node.retry.jitter,
        )
    defer = meta.get("deferAfterMs")
    return FlowletSpec(
        id=node.id,
        ref=node.name or node.id,
        app_id=str(meta.get("appId") or node.type),
        args=dict(node.config),
        filters=node.filters,
        timeout_ms=node.timeout_ms,
        retry=retry,
        on_error=on_error,
        defer_after_ms=int(defer) if isinstance(defer, int | float) and defer > 0 else None,
        needs_approval=node.needs_approval,
        skip_output_mapping=bool(meta.get("skipOutputMapping")),
    )


def flow_meta(workflow: Workflow) -> Mapping[str, Any]:
    extra = workflow.extra.get(FLOW8_KEY)
    return extra if isinstance(extra, Mapping) else {}


def flow_from_workflow(workflow: Workflow) -> Flow:
    """The flow8 view of any workflow (a non-chain one is marked ``chain=False``)."""
    meta = flow_meta(workflow)
    notify = meta.get("notify")
    notify_map: Mapping[str, Any] = notify if isinstance(notify, Mapping) else {}
    defaults = WorkflowSettings()
    spec = FlowSpec(
        name=workflow.name,
        description=workflow.description,
        category=str(meta.get("category") or "general"),
        enabled=bool(meta.get("enabled", True)),
        group_id=workflow.group,
        flowlets=tuple(_flowlet_from_node(node) for node in workflow.nodes),
        notify=NotifySpec(
            on_fail=tuple(str(c) for c in notify_map.get("onFail") or ()),
            on_finish=tuple(str(c) for c in notify_map.get("onFinish") or ()),
        ),
        execution=ExecutionSpec(
            timeout_ms=workflow.settings.max_execution_time_ms,
            max_parallel=(
                workflow.settings.max_parallel_nodes
                if workflow.settings.max_parallel_nodes != defaults.max_parallel_nodes
                else None
            ),
        ),
    )
    created, updated = meta.get("createdAt"), meta.get("updatedAt")
    return Flow(
        id=workflow.id,
        spec=spec,
        owner=workflow.owner,
        version=workflow.version,
        created_at=float(created) if isinstance(created, int | float) else None,
        updated_at=float(updated) if isinstance(updated, int | float) else None,
        chain=is_flow8_chain(workflow),
    )


def check_flowlet(flowlet: FlowletSpec, where: str) -> list[ProblemDetail]:
    """Problems of one flowlet's own fields (``appId`` is checked against the registry
    when the flow is built)."""
    problems: list[ProblemDetail] = []
    if not _REF.fullmatch(flowlet.ref or ""):
        problems.append(
            ProblemDetail(
                "must be 1-100 letters, digits, '_' or '-' (it names the step in expressions)",
                f"{where}.ref",
            )
        )
    if not flowlet.app_id.strip():
        problems.append(ProblemDetail("must not be empty", f"{where}.appId"))
    if flowlet.on_error not in ON_ERROR_VALUES:
        problems.append(
            ProblemDetail(f"must be one of {', '.join(ON_ERROR_VALUES)}", f"{where}.onError")
        )
    for name, value in (("timeout", flowlet.timeout_ms), ("deferAfterMs", flowlet.defer_after_ms)):
        if value is not None and value < 0:
            problems.append(ProblemDetail("must not be negative", f"{where}.{name}"))
    retry = flowlet.retry
    if retry is not None:
        if not 0 <= retry.max_retries <= 100:
            problems.append(ProblemDetail("must be from 0 to 100", f"{where}.retry.maxRetries"))
        if retry.initial_delay_ms < 0 or (
            retry.max_delay_ms is not None and retry.max_delay_ms < 0
        ):
            problems.append(ProblemDetail("delays must not be negative", f"{where}.retry"))
        if not (math.isfinite(retry.backoff_multiplier) and retry.backoff_multiplier >= 1):
            problems.append(ProblemDetail("must be at least 1", f"{where}.retry.backoffMultiplier"))
        if not 0 <= retry.jitter <= 1:
            problems.append(ProblemDetail("must be from 0 to 1", f"{where}.retry.jitter"))
    return problems


# -- the service ----------------------------------------------------------------------------


class FlowService:
    """Flows and their flowlets, with every action checked by ``Access``."""

    def __init__(
        self,
        store: SqlStore,
        workflows: WorkflowService,
        executions: ExecutionService,
        registry: NodeRegistry,
        access: Access,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.workflows = workflows
        self.executions = executions
        self.registry = registry
        self.access = access
        self._clock = clock

    # -- reading ------------------------------------------------------------------------

    async def workflow(self, principal: Principal, flow_id: str, action: Action) -> Workflow:
        """The workflow of ``flow_id`` if ``principal`` may do ``action`` to it."""
        workflow = await self.store.get_workflow(flow_id)
        if workflow is None:
            raise NotFound("flow", flow_id)
        await self.access.check(principal, flow_resource(workflow), action)
        return workflow

    async def get(self, principal: Principal, flow_id: str) -> Flow:
        return flow_from_workflow(await self.workflow(principal, flow_id, Action.VIEW))

    async def list(
        self,
        principal: Principal,
        *,
        group_id: str | None = None,
        limit: int = 25,
        offset: int = 0,
    ) -> tuple[builtins.list[Flow], int]:
        """The flows the caller may see, oldest first."""
        workflows, total = await self.store.list_flows(
            Access.viewer(principal), group_id=group_id, limit=limit, offset=offset
        )
        return [flow_from_workflow(workflow) for workflow in workflows], total

    # -- writing ------------------------------------------------------------------------

    async def _check_group(self, principal: Principal, group_id: str | None) -> None:
        """A flow may be put in a group only by an editor (or owner) of that group."""
        if group_id is None:
            return
        if await self.store.get_group(group_id) is None:
            raise NotFound("group", group_id)
        await self.access.check(
            principal, Resource("group", group_id, owner=None, group_id=group_id), Action.EDIT
        )

    def _check_spec(self, spec: FlowSpec) -> None:
        problems: list[ProblemDetail] = []
        if not spec.name.strip():
            problems.append(ProblemDetail("must not be empty", "name"))
        elif len(spec.name) > MAX_NAME_CHARS:
            problems.append(ProblemDetail(f"must be at most {MAX_NAME_CHARS} characters", "name"))
        if len(spec.flowlets) > MAX_FLOWLETS:
            problems.append(ProblemDetail(f"at most {MAX_FLOWLETS} flowlets", "flowlets"))
        refs: set[str] = set()
        for index, flowlet in enumerate(spec.flowlets):
            problems.extend(check_flowlet(flowlet, f"flowlets[{index}]"))
            if flowlet.ref in refs:
                problems.append(
                    ProblemDetail(
                        f"ref {flowlet.ref!r} is used twice", f"flowlets[{index}].ref", "duplicate"
                    )
                )
            refs.add(flowlet.ref)
        execution = spec.execution
        if execution.timeout_ms is not None and execution.timeout_ms <= 0:
            problems.append(ProblemDetail("must be positive", "executionConfig.timeoutMs"))
        if execution.max_parallel is not None and execution.max_parallel < 1:
            problems.append(ProblemDetail("must be at least 1", "executionConfig.maxParallel"))
        if problems:
            raise InvalidInput("invalid flow: " + "; ".join(map(str, problems)), problems)

    async def _save(
        self,
        principal: Principal,
        flow_id: str,
        spec: FlowSpec,
        *,
        owner: str | None,
        created_at: float | None,
        existing: Workflow | None,
    ) -> Flow:
        self._check_spec(spec)
        flowlets = _with_ids(spec.flowlets, existing)
        spec = dataclasses.replace(spec, flowlets=flowlets)
        now = self._clock()
        workflow = workflow_from_flow(
            flow_id,
            spec,
            self.registry,
            owner=owner,
            created_at=created_at if created_at is not None else now,
            updated_at=now,
        )
        try:
            if existing is None:
                saved = await self.workflows.create(workflow, actor=principal.user_id)
            else:
                saved = await self.workflows.update(flow_id, workflow, actor=principal.user_id)
        except InvalidInput as exc:
            raise _in_flowlet_terms(exc, spec.flowlets) from None
        return flow_from_workflow(saved)

    async def create(self, principal: Principal, spec: FlowSpec) -> Flow:
        """A new flow owned by the caller (version 1)."""
        await self._check_group(principal, spec.group_id)
        return await self._save(
            principal, _new_id(), spec, owner=principal.user_id, created_at=None, existing=None
        )

    async def update(self, principal: Principal, flow_id: str, spec: FlowSpec) -> Flow:
        """Save ``spec`` as the next version of the flow (editors and owners)."""
        existing = await self.workflow(principal, flow_id, Action.EDIT)
        _require_chain(existing)
        if spec.group_id != existing.group:
            await self._check_group(principal, spec.group_id)
        created = flow_meta(existing).get("createdAt")
        return await self._save(
            principal,
            flow_id,
            spec,
            owner=existing.owner or principal.user_id,
            created_at=float(created) if isinstance(created, int | float) else None,
            existing=existing,
        )

    async def delete(self, principal: Principal, flow_id: str) -> None:
        """Delete a flow: it is no longer listed nor runnable; its plays stay."""
        await self.workflow(principal, flow_id, Action.EDIT)
        await self.workflows.delete(flow_id)

    # -- flowlets -----------------------------------------------------------------------

    async def layers(self, principal: Principal, flow_id: str) -> builtins.list[FlowletSpec]:
        return list((await self.get(principal, flow_id)).spec.flowlets)

    async def add_layer(
        self, principal: Principal, flow_id: str, flowlet: FlowletSpec, position: int | None
    ) -> tuple[Flow, FlowletSpec]:
        """Insert a flowlet at ``position`` (default: at the end); a new version."""
        existing = await self.workflow(principal, flow_id, Action.EDIT)
        _require_chain(existing)
        flow = flow_from_workflow(existing)
        flowlets = list(flow.spec.flowlets)
        new = dataclasses.replace(flowlet, id=_new_id())
        index = len(flowlets) if position is None else max(0, min(position, len(flowlets)))
        flowlets.insert(index, new)
        saved = await self._save_flowlets(principal, existing, flow, flowlets)
        return saved, saved.spec.flowlets[index]

    async def update_layer(
        self, principal: Principal, flow_id: str, layer_id: str, flowlet: FlowletSpec
    ) -> tuple[Flow, FlowletSpec]:
        existing = await self.workflow(principal, flow_id, Action.EDIT)
        _require_chain(existing)
        flow = flow_from_workflow(existing)
        flowlets = list(flow.spec.flowlets)
        index = _layer_index(flowlets, layer_id)
        flowlets[index] = dataclasses.replace(flowlet, id=layer_id)
        saved = await self._save_flowlets(principal, existing, flow, flowlets)
        return saved, saved.spec.flowlets[index]

    async def delete_layer(self, principal: Principal, flow_id: str, layer_id: str) -> Flow:
        existing = await self.workflow(principal, flow_id, Action.EDIT)
        _require_chain(existing)
        flow = flow_from_workflow(existing)
        flowlets = list(flow.spec.flowlets)
        del flowlets[_layer_index(flowlets, layer_id)]
        return await self._save_flowlets(principal, existing, flow, flowlets)

    async def layer(self, principal: Principal, flow_id: str, layer_id: str) -> FlowletSpec:
        flowlets = await self.layers(principal, flow_id)
        return flowlets[_layer_index(flowlets, layer_id)]

    async def _save_flowlets(
        self,
        principal: Principal,
        existing: Workflow,
        flow: Flow,
        flowlets: Sequence[FlowletSpec],
    ) -> Flow:
        spec = dataclasses.replace(flow.spec, flowlets=tuple(flowlets))
        return await self._save(
            principal,
            existing.id,
            spec,
            owner=existing.owner or principal.user_id,
            created_at=flow.created_at,
            existing=existing,
        )

    # -- running ------------------------------------------------------------------------

    async def run(
        self,
        principal: Principal,
        flow_id: str,
        args: Mapping[str, Any],
        *,
        trigger: str = "api",
    ) -> Execution:
        """Start a play of the flow with ``args`` (runners, editors, owners)."""
        workflow = await self.workflow(principal, flow_id, Action.RUN)
        if not flow_meta(workflow).get("enabled", True):
            raise FlowDisabled(f"Flow {flow_id} is disabled; enable it to run it")
        return await self.executions.start(flow_id, args, trigger=trigger)


def _require_chain(workflow: Workflow) -> None:
    if not is_flow8_chain(workflow):
        raise Conflict(
            f"Flow {workflow.id} is a graph made with another API, not a chain of flowlets;"
            " edit it there"
        )


def _layer_index(flowlets: Sequence[FlowletSpec], layer_id: str) -> int:
    for index, flowlet in enumerate(flowlets):
        if flowlet.id == layer_id:
            return index
    raise NotFound("layer", layer_id)


def _with_ids(
    flowlets: Sequence[FlowletSpec], existing: Workflow | None
) -> tuple[FlowletSpec, ...]:
    """Keep the id of a flowlet that names one of the flow's (by id, else by ref); give
    new flowlets new ids."""
    known_ids = {node.id for node in existing.nodes} if existing is not None else set()
    by_ref = {node.name: node.id for node in existing.nodes if node.name} if existing else {}
    used: set[str] = set()
    result: list[FlowletSpec] = []
    for flowlet in flowlets:
        ident = flowlet.id if flowlet.id in known_ids else by_ref.get(flowlet.ref)
        if ident is None or ident in used:
            ident = _new_id()
        used.add(ident)
        result.append(dataclasses.replace(flowlet, id=ident))
    return tuple(result)


def _in_flowlet_terms(exc: InvalidInput, flowlets: Sequence[FlowletSpec]) -> InvalidInput:
    """Validation names nodes by id; a flow8 user knows them by ref."""
    names = {flowlet.id: flowlet.ref for flowlet in flowlets if flowlet.id}

    def rename(text: str | None) -> str | None:
        if text is None:
            return None
        for ident, ref in names.items():
            text = text.replace(f"node {ident!r}", f"flowlet {ref!r}")
        return text

    problems = [
        ProblemDetail(rename(p.message) or p.message, rename(p.where), p.code) for p in exc.problems
    ]
    return InvalidInput(rename(exc.message) or exc.message, problems)


def _new_id() -> str:
    return secrets.token_hex(12)
