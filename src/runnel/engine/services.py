"""What nodes may ask of the platform, as one object with optional capabilities."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

    from runnel.engine.node import NodeContext
    from runnel.model.workflow import Workflow

__all__ = ["HttpPolicy", "NodeServices", "NotifySender", "SubworkflowRunner"]

#: (workflow id, inputs, the calling node's context) -> the child's end-node outputs
#: (node id -> port -> value). Raises NodeFailure when the child fails.
SubworkflowRunner = Callable[
    [str, Mapping[str, Any], "NodeContext"], Awaitable[Mapping[str, Mapping[str, Any]]]
]


#: (channel id or name, message ``{title, text, data}``, the calling node's context) ->
#: what was delivered (``{channel, type, detail}``). Raises NodeFailure when it was not.
NotifySender = Callable[[str, Mapping[str, Any], "NodeContext"], Awaitable[Mapping[str, Any]]]


@dataclass(frozen=True, slots=True)
class HttpPolicy:
    """Outbound HTTP rules for the ``http.request`` node."""

    #: Hosts that may resolve to private, loopback or link-local addresses.
    allowed_hosts: frozenset[str] = frozenset()
    max_response_bytes: int = 10 * 1024 * 1024
    default_timeout_ms: int = 30_000
    max_redirects: int = 5


@dataclass(slots=True)
class NodeServices:
    """Shared by every node of an execution. Fields a host does not provide stay ``None``."""

    http: HttpPolicy = field(default_factory=HttpPolicy)
    #: A shared client for connection reuse; nodes create a short-lived one when ``None``.
    http_client: httpx.AsyncClient | None = None
    #: Loads a stored workflow by id (latest version), for ``flow.subworkflow``.
    load_workflow: Callable[[str], Awaitable[Workflow | None]] | None = None
    #: Runs a child execution; set by the executor itself.
    run_subworkflow: SubworkflowRunner | None = None
    max_subworkflow_depth: int = 5
    #: ``time.delay`` longer than this raises ``WaitUntil`` so the execution is parked in the
    #: store instead of holding a worker; ``None`` sleeps in place.
    park_delays_over_ms: int | None = None
    #: Components an operator disabled (Flowork kill switch): running one fails the node.
    disabled_types: frozenset[str] = frozenset()
    #: Sends a message through a notification channel (``notify.channel``).
    notify: NotifySender | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
