"""One engine's use cases behind the Core Engine socket (seed 002); see
``docs/flowork-realtime.md``."""

from __future__ import annotations

from runnel.services.core_engine.authority import (
    GatewayStoreAuthority,
    ListAuthority,
    StaticAuthority,
)
from runnel.services.core_engine.engine import (
    JOB_TYPES,
    STATUS_INTERVAL_SECONDS,
    CoreEngine,
    CoreEngineParts,
    JobFactory,
    JobHandler,
    ShareGrants,
)
from runnel.services.core_engine.engine_settings import EngineSettingsService
from runnel.services.core_engine.factory import JobRuns, build_core_engine
from runnel.services.core_engine.files import FileBrowser, default_browse_roots
from runnel.services.core_engine.types import (
    EngineAuthority,
    EngineUser,
    EnvelopeRejected,
    Outgoing,
    OutgoingListener,
)
from runnel.services.core_engine.vitals import Vitals, VitalsSampler

__all__ = [
    "JOB_TYPES",
    "STATUS_INTERVAL_SECONDS",
    "CoreEngine",
    "CoreEngineParts",
    "EngineAuthority",
    "EngineSettingsService",
    "EngineUser",
    "EnvelopeRejected",
    "FileBrowser",
    "GatewayStoreAuthority",
    "JobFactory",
    "JobHandler",
    "JobRuns",
    "ListAuthority",
    "Outgoing",
    "OutgoingListener",
    "ShareGrants",
    "StaticAuthority",
    "Vitals",
    "VitalsSampler",
    "build_core_engine",
    "default_browse_roots",
]
