"""The flow8 use cases, built together: one object the composition root holds."""

from __future__ import annotations

import httpx

from runnel.auth.sealing import Sealer
from runnel.auth.secret import PURPOSE_SECRETS, PURPOSE_SESSIONS, derive_key
from runnel.engine.expressions import ExpressionEngine
from runnel.engine.registry import NodeRegistry
from runnel.engine.services import HttpPolicy
from runnel.services.access import Access
from runnel.services.accounts import AccountService
from runnel.services.channels import ChannelService
from runnel.services.executions import ExecutionService
from runnel.services.flows import FlowService
from runnel.services.groups import GroupService
from runnel.services.kv import KvService
from runnel.services.plays import PlayService
from runnel.services.runtime import FlowRuntime
from runnel.services.schedules import ScheduleService
from runnel.services.sessions import LoginThrottle, SessionService
from runnel.services.workflows import WorkflowService
from runnel.store import SqlStore

__all__ = ["Flow8Services"]


class Flow8Services:
    """Sessions, groups, flows, plays, KV, channels and schedules, with the one ``Access``
    check they share, and the ``FlowRuntime`` the executor calls on."""

    def __init__(
        self,
        store: SqlStore,
        *,
        accounts: AccountService,
        workflows: WorkflowService,
        executions: ExecutionService,
        registry: NodeRegistry,
        expressions: ExpressionEngine,
        instance_key: bytes,
        http_client: httpx.AsyncClient | None = None,
        http_policy: HttpPolicy | None = None,
        login_max_failures: int = 10,
    ) -> None:
        self.access = Access(store)
        self.sessions = SessionService(
            store,
            accounts,
            derive_key(instance_key, PURPOSE_SESSIONS),
            throttle=LoginThrottle(max_failures=login_max_failures),
        )
        self.groups = GroupService(store, self.access)
        self.flows = FlowService(store, workflows, executions, registry, self.access)
        self.plays = PlayService(store, executions, self.access)
        self.kv = KvService(store, self.access)
        self.channels = ChannelService(
            store,
            self.access,
            # The instance key's secrets subkey, with the channel's id as context.
            Sealer(derive_key(instance_key, PURPOSE_SECRETS)),
            http_client=http_client,
            http_policy=http_policy,
        )
        self.schedules = ScheduleService(store, self.access)
        self.runtime = FlowRuntime(self.kv, self.channels, expressions)
