"""The composition root: one object that opens the store and wires every service.

``runnel serve``, ``runnel worker`` and the tests build a ``Platform``; the API receives one.

The database URL chooses the mode. SQLite (the embedded default): one process, a
``MemoryBus`` and the ``EmbeddedWorker``; the file is locked against a second process.
PostgreSQL (multi-node): a ``PostgresBus`` between processes, a ``ClusterWorker`` holding
executions on leases, and the ``ClusterDispatcher``; the schema must have been migrated
(``runnel migrate``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from runnel.auth.secret import derive_key, load_or_create_instance_key
from runnel.bus import MemoryBus
from runnel.bus.postgres import PostgresBus
from runnel.engine.expressions import ExpressionEngine
from runnel.engine.node import NodeContext
from runnel.engine.registry import NodeRegistry, default_registry
from runnel.engine.services import HttpPolicy, NodeServices
from runnel.model.events import Event
from runnel.model.workflow import Workflow
from runnel.nodes.http import new_client
from runnel.scheduler import Scheduler
from runnel.services.accounts import AccountService
from runnel.services.core_engine import (
    CoreEngine,
    EngineAuthority,
    GatewayStoreAuthority,
    JobRuns,
    ShareGrants,
    build_core_engine,
    default_browse_roots,
)
from runnel.services.core_engine.jobs import JobVariables
from runnel.services.dispatch import Dispatcher
from runnel.services.executions import ExecutionService
from runnel.services.flow8 import Flow8Services
from runnel.services.flowork import FloworkServices
from runnel.services.runtime import ContextKv, RuntimeExecutor
from runnel.services.workflows import WorkflowService
from runnel.store import SqlStore
from runnel.store import codec as store_codec
from runnel.store import migrate as store_migrate
from runnel.store.connect import create_store_engine, default_database_url, normalize_url
from runnel.store.guards import ProcessLock, SchemaOutOfDate, lock_sqlite_file
from runnel.worker.cluster import ClusterWorker, LeaseSettings
from runnel.worker.dispatch import ClusterDispatcher
from runnel.worker.embedded import EmbeddedWorker

__all__ = ["DEFAULT_PARK_DELAYS_OVER_MS", "Platform", "PlatformConfig", "check_schema"]


@dataclass(frozen=True, slots=True)
class PlatformConfig:
    data_dir: Path
    database_url: str | None = None
    #: Hosts the http.request node may reach even on private or loopback addresses.
    http_allowed_hosts: frozenset[str] = frozenset()
    #: Run executions in this process (``runnel serve``) or only answer APIs.
    worker: bool = True
    worker_concurrency: int = 64
    #: Overrides the instance key kept in the data dir (``RUNNEL_SECRET_KEY``).
    secret_key: str | None = None
    shutdown_grace_seconds: float = 10.0
    disabled_types: frozenset[str] = field(default_factory=frozenset)
    #: Multi-node workers: leases, heartbeat, takeover limit, polling fallback.
    leases: LeaseSettings = field(default_factory=LeaseSettings)
    #: ``time.delay`` longer than this parks the execution in the store, releasing the
    #: worker. None: 30 s on PostgreSQL, never on SQLite (the embedded worker sleeps).
    park_delays_over_ms: int | None = None
    #: This process answers APIs (it receives every process's events for its sockets).
    serves_api: bool = True
    #: flow8 sign-in: failures within 15 minutes before 429 (per email, per address).
    login_max_failures: int = 10
    #: Folders the Flowork GUI may browse on this process's engine; empty: ``<data_dir>/files``.
    browse_roots: tuple[Path, ...] = ()


class Platform:
    """Every long-lived component of one runnel process."""

    def __init__(
        self,
        config: PlatformConfig,
        store: SqlStore,
        registry: NodeRegistry,
        instance_key: bytes,
    ) -> None:
        self.config = config
        self.store = store
        self.registry = registry
        #: PostgreSQL: many processes share the database (see the module docstring).
        self.multi_node = store.dialect == "postgresql"
        self.postgres_bus: PostgresBus | None = None
        self.bus: MemoryBus | PostgresBus
        if self.multi_node:
            self.bus = self.postgres_bus = PostgresBus(
                store.url.set(drivername="postgresql").render_as_string(hide_password=False),
                encode=_encode_event,
                decode=_decode_event,
                load_event=self._load_event,
                listen_events=config.serves_api,
            )
        else:
            self.bus = MemoryBus()
        park = config.park_delays_over_ms
        if park is None and self.multi_node:
            park = DEFAULT_PARK_DELAYS_OVER_MS
        self.expressions = ExpressionEngine()
        self.http_client = new_client()
        self.node_services = NodeServices(
            http=HttpPolicy(allowed_hosts=config.http_allowed_hosts),
            http_client=self.http_client,
            load_workflow=self._load_workflow,
            disabled_types=config.disabled_types,
            park_delays_over_ms=park,
            # flow8: each execution's $kv scope, and notify.channel deliveries.
            notify=self._notify,
            extra={"kv": ContextKv()},
        )
        self.executor = RuntimeExecutor(
            registry, store, self.bus, self.node_services, self.expressions
        )
        self.worker: EmbeddedWorker | ClusterWorker
        self.cluster_dispatcher: ClusterDispatcher | None = None
        dispatcher: Dispatcher
        if self.multi_node or park is not None:
            # Parked executions need the due-timer sweep of the cluster worker, also when an
            # operator asks SQLite to park.
            leases = dataclasses.replace(config.leases, concurrency=config.worker_concurrency)
            self.worker = ClusterWorker(store, self.executor, leases, bus=self.postgres_bus)
            dispatcher = self.worker
        else:
            self.worker = EmbeddedWorker(
                store, self.executor, concurrency=config.worker_concurrency
            )
            dispatcher = self.worker
        if self.postgres_bus is not None:
            assert isinstance(self.worker, ClusterWorker)
            dispatcher = self.cluster_dispatcher = ClusterDispatcher(
                self.postgres_bus, self.worker if config.worker else None
            )
        self.workflows = WorkflowService(store, registry, self.expressions)
        self.executions = ExecutionService(store, self.bus, self.workflows, dispatcher)
        self.worker.on_crash = self.executions.fail_stranded
        self.accounts = AccountService(store, derive_key(instance_key, "api-keys"))
        self.flowork = FloworkServices(
            store, registry, self.node_services, instance_key, static_disabled=config.disabled_types
        )
        self.flow8 = Flow8Services(
            store,
            accounts=self.accounts,
            workflows=self.workflows,
            executions=self.executions,
            registry=registry,
            expressions=self.expressions,
            instance_key=instance_key,
            http_client=self.http_client,
            http_policy=self.node_services.http,
            login_max_failures=config.login_max_failures,
        )
        self.executor.runtime = self.flow8.runtime
        # Flowork jobs' runs read their starter's variables (``{{vars.NAME}}``).
        self.executor.variables = JobVariables(self.flowork.variables)
        self.scheduler = Scheduler(
            store,
            self.executions,
            self.flow8.schedules,
            kv=self.flow8.kv,
            sessions=self.flow8.sessions,
        )
        self.flow8.schedules.on_change = self.scheduler.wake
        self.instance_key = instance_key
        #: The embedded Flowork engine's Core Engine, once ``start_embedded_engine`` ran
        #: (the Core Engine socket and the gateway's Socket.IO relay use it).
        self.core_engine: CoreEngine | None = None
        self._started = False
        self._lock: ProcessLock | None = None

    @classmethod
    async def open(cls, config: PlatformConfig) -> Platform:
        """Open the store and build the services; ``start`` runs the worker.

        SQLite is migrated on the way; a PostgreSQL database must already be at the newest
        revision (``runnel migrate``), else ``SchemaOutOfDate``.
        """
        config.data_dir.mkdir(parents=True, exist_ok=True)
        url = config.database_url or default_database_url(config.data_dir)
        multi_node = normalize_url(url).get_backend_name() == "postgresql"
        if multi_node:
            await asyncio.to_thread(check_schema, url)
        store = await asyncio.to_thread(
            SqlStore.open, config.database_url, data_dir=config.data_dir, migrate=not multi_node
        )
        try:
            key = load_or_create_instance_key(config.data_dir, config.secret_key)
            platform = cls(config, store, default_registry(), key)
        except BaseException:
            await store.close()
            raise
        try:
            if platform.postgres_bus is not None:
                await platform.postgres_bus.start()
            if platform.cluster_dispatcher is not None and config.serves_api:
                await platform.cluster_dispatcher.start(store)
        except BaseException:
            await platform.stop()
            raise
        return platform

    async def start(self) -> None:
        """Start the worker (if this process runs executions). On SQLite, first make sure
        no other process serves the same file (``DatabaseInUse``)."""
        if self._started:
            return
        if not self.multi_node and self._lock is None:
            self._lock = lock_sqlite_file(self.store.url)
        if self.config.worker:
            # One SQLite process owns every execution marked running; on PostgreSQL, only
            # expired leases are taken over.
            await self.worker.start(sole_process=not self.multi_node)
        await self.flowork.start()
        if self.config.worker:
            await self.scheduler.start()
        self._started = True

    def new_core_engine(
        self,
        engine_id: str,
        authority: EngineAuthority,
        *,
        share_grants: ShareGrants | None = None,
    ) -> CoreEngine:
        """A Core Engine for ``engine_id`` over this platform's services (the embedded
        engine, or a ``runnel engine`` process's own); the caller starts and stops it."""
        roots = self.config.browse_roots or default_browse_roots(self.config.data_dir)
        return build_core_engine(
            self.flowork,
            self.registry,
            engine_id,
            authority,
            roots,
            runs=JobRuns(self.workflows, self.executions, self.bus),
            share_grants=share_grants,
        )

    async def start_embedded_engine(self) -> CoreEngine | None:
        """Build and start the embedded engine's Core Engine, once
        ``FloworkServices.bootstrap`` made the engine (None before that)."""
        embedded = self.flowork.embedded_engine
        if self.core_engine is None and embedded is not None:
            engine = self.new_core_engine(
                embedded.id, GatewayStoreAuthority(self.flowork.engines, embedded.id)
            )
            await engine.start()
            self.core_engine = engine
        return self.core_engine

    async def stop(self) -> None:
        """Finish or checkpoint running executions, then close everything."""
        core_engine, self.core_engine = self.core_engine, None
        if core_engine is not None:
            await core_engine.stop()
        await self.scheduler.stop()
        await self.flowork.stop()
        with contextlib.suppress(Exception):
            await self.worker.stop(self.config.shutdown_grace_seconds)
        with contextlib.suppress(Exception):
            await self.bus.close()
        await self.flow8.runtime.drain()
        await self.http_client.aclose()
        await self.store.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    async def __aenter__(self) -> Platform:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _notify(
        self, channel: str, message: Mapping[str, Any], ctx: NodeContext
    ) -> Mapping[str, Any]:
        return await self.flow8.runtime.notify(channel, message, ctx)

    async def _load_workflow(self, workflow_id: str) -> Workflow | None:
        return await self.store.get_workflow(workflow_id)

    async def _load_event(self, execution_id: str, seq: int) -> Event | None:
        events = await self.store.events(execution_id, after_seq=seq - 1, limit=1)
        return events[0] if events and events[0].seq == seq else None


#: Delays longer than this park in multi-node mode (``PlatformConfig.park_delays_over_ms``).
DEFAULT_PARK_DELAYS_OVER_MS: Final = 30_000


def check_schema(url: str) -> None:
    """Raise ``SchemaOutOfDate`` unless the database at ``url`` is at the newest revision
    (blocking)."""
    engine = create_store_engine(normalize_url(url), "admin")
    try:
        current = store_migrate.current_revisions(engine)
    finally:
        engine.dispose()
    expected = store_migrate.head_revisions()
    if current != expected:
        raise SchemaOutOfDate(current, expected)


def _encode_event(event: Event) -> str:
    return store_codec.dumps(store_codec.event_to_dict(event))


def _decode_event(text: str) -> Event:
    return store_codec.event_from_dict(store_codec.loads(text))
