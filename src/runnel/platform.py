"""The composition root: one object that opens the store and wires every service.

``runnel serve``, ``runnel worker`` and the tests build a ``Platform``; the API receives one.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from pathlib import Path

from runnel.auth.secret import derive_key, load_or_create_instance_key
from runnel.bus import MemoryBus
from runnel.engine.executor import Executor
from runnel.engine.expressions import ExpressionEngine
from runnel.engine.registry import NodeRegistry, default_registry
from runnel.engine.services import HttpPolicy, NodeServices
from runnel.model.workflow import Workflow
from runnel.nodes.http import new_client
from runnel.services.accounts import AccountService
from runnel.services.executions import ExecutionService
from runnel.services.workflows import WorkflowService
from runnel.store import SqlStore
from runnel.worker.embedded import EmbeddedWorker

__all__ = ["Platform", "PlatformConfig"]


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
        self.bus = MemoryBus()
        self.expressions = ExpressionEngine()
        self.http_client = new_client()
        self.node_services = NodeServices(
            http=HttpPolicy(allowed_hosts=config.http_allowed_hosts),
            http_client=self.http_client,
            load_workflow=self._load_workflow,
            disabled_types=config.disabled_types,
        )
        self.executor = Executor(registry, store, self.bus, self.node_services, self.expressions)
        self.worker = EmbeddedWorker(store, self.executor, concurrency=config.worker_concurrency)
        self.workflows = WorkflowService(store, registry, self.expressions)
        self.executions = ExecutionService(store, self.bus, self.workflows, self.worker)
        self.worker.on_crash = self.executions.fail_stranded
        self.accounts = AccountService(store, derive_key(instance_key, "api-keys"))
        self.instance_key = instance_key
        self._started = False

    @classmethod
    async def open(cls, config: PlatformConfig) -> Platform:
        """Open (and migrate) the store and build the services; ``start`` runs the worker."""
        config.data_dir.mkdir(parents=True, exist_ok=True)
        store = await asyncio.to_thread(
            SqlStore.open, config.database_url, data_dir=config.data_dir
        )
        try:
            key = load_or_create_instance_key(config.data_dir, config.secret_key)
            return cls(config, store, default_registry(), key)
        except BaseException:
            await store.close()
            raise

    async def start(self) -> None:
        if self.config.worker and not self._started:
            await self.worker.start()
        self._started = True

    async def stop(self) -> None:
        """Finish or checkpoint running executions, then close everything."""
        with contextlib.suppress(Exception):
            await self.worker.stop(self.config.shutdown_grace_seconds)
        await self.http_client.aclose()
        await self.store.close()

    async def __aenter__(self) -> Platform:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _load_workflow(self, workflow_id: str) -> Workflow | None:
        return await self.store.get_workflow(workflow_id)
