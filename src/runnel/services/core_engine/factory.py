"""``build_core_engine``: a ``CoreEngine`` over one process's Flowork services.

Used for the embedded engine (``Platform.start_embedded_engine``) and by a ``runnel
engine`` process over its own platform; it takes services, not the platform (services do
not import the composition root).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from runnel.bus import Bus
from runnel.engine.registry import NodeRegistry
from runnel.services.core_engine.engine import (
    STATUS_INTERVAL_SECONDS,
    CoreEngine,
    CoreEngineParts,
    JobFactory,
    JobHandler,
    ShareGrants,
)
from runnel.services.core_engine.engine_settings import EngineSettingsService
from runnel.services.core_engine.files import FileBrowser
from runnel.services.core_engine.types import EngineAuthority, OutgoingListener
from runnel.services.executions import ExecutionService
from runnel.services.flowork import FloworkServices
from runnel.services.workflows import WorkflowService

__all__ = ["JobRuns", "build_core_engine"]


@dataclass(frozen=True, slots=True)
class JobRuns:
    """Where an engine's jobs run: its process's workflows, executions and event bus."""

    workflows: WorkflowService
    executions: ExecutionService
    bus: Bus


def build_core_engine(
    flowork: FloworkServices,
    registry: NodeRegistry,
    engine_id: str,
    authority: EngineAuthority,
    browse_roots: Sequence[Path],
    *,
    runs: JobRuns | None = None,
    share_grants: ShareGrants | None = None,
    jobs: JobFactory | None = None,
    create_roots: bool = True,
    status_interval: float = STATUS_INTERVAL_SECONDS,
) -> CoreEngine:
    """The engine ``engine_id`` over ``flowork``'s services.

    ``runs``: where its jobs run (the platform's workflows, executions and bus); with it,
    the engine gets a ``JobService``, without it (and without ``jobs``, a factory for tests
    or another job service) job messages answer "not available". ``share_grants``: who
    checks share links (default: this store's ``ShareLinkService``; a separate engine asks
    its gateway). ``create_roots``: make missing browse roots."""
    parts = CoreEngineParts(
        identities=flowork.identities,
        presets=flowork.presets,
        variables=flowork.variables,
        share_grants=share_grants if share_grants is not None else flowork.share_links,
        settings=EngineSettingsService(
            flowork.identities.store, flowork.identities, flowork.presets
        ),
        files=FileBrowser(browse_roots, create=create_roots),
        registry=registry,
    )
    if jobs is None and runs is not None:
        jobs = _job_service(runs, parts, engine_id, authority)
    return CoreEngine(engine_id, authority, parts, jobs=jobs, status_interval=status_interval)


def _job_service(
    runs: JobRuns, parts: CoreEngineParts, engine_id: str, authority: EngineAuthority
) -> JobFactory:
    # Imported here: jobs imports the package's types, so the package must be importable
    # without it first.
    from runnel.services.core_engine.jobs import JobDeps, JobService

    deps = JobDeps(
        workflows=runs.workflows,
        executions=runs.executions,
        bus=runs.bus,
        presets=parts.presets,
        variables=parts.variables,
        settings=parts.settings.get,
        engine_id=engine_id,
        authority=authority,
    )

    def build(emit: OutgoingListener) -> JobHandler:
        return JobService(deps, emit)

    return build
