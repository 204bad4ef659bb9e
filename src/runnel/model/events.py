"""Execution events: ordered per execution by ``seq``, stored and streamed.

Each type carries these ``data`` keys (dialects render them in their own wire format):

- ``execution.started``: ``workflow_id``, ``workflow_version``, ``mode``, ``inputs``
- ``execution.status``: ``status`` (an ``ExecutionStatus`` value), ``previous``
- ``execution.finished``: ``status``, ``duration_ms``, ``error`` (or None), ``outputs``
- ``node.started``: ``node_type``, ``node_name``, ``attempt``, ``inputs_size``
- ``node.finished``: ``node_type``, ``node_name``, ``status`` (succeeded, skipped, filtered,
  cancelled, or failed when ``on_error`` continued), ``outputs``, ``duration_ms``,
  ``inputs_size``, ``outputs_size``, ``attempt``
- ``node.failed``: ``node_type``, ``node_name``, ``error`` (NodeError.as_dict()), ``attempt``,
  ``will_retry``, ``duration_ms``
- ``node.event``: ``kind`` (info, warning, progress, data, log), ``message``, and
  ``percent`` (progress), ``port`` and ``value`` (data), ``level`` (log)
- ``edge.traversed``: ``edge_id``, ``source_port``, ``target``, ``target_port``, ``value``
- ``approval.requested``: ``message``, ``node_name``
- ``approval.resolved``: ``approved``, ``by``, ``comment``
- ``debug.popup``: ``title``, ``content``
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from runnel.model._fastinit import fast_init

__all__ = ["Event", "EventType"]


class EventType(StrEnum):
    EXECUTION_STARTED = "execution.started"
    EXECUTION_STATUS = "execution.status"
    EXECUTION_FINISHED = "execution.finished"
    NODE_STARTED = "node.started"
    NODE_FINISHED = "node.finished"
    NODE_FAILED = "node.failed"
    NODE_EVENT = "node.event"
    EDGE_TRAVERSED = "edge.traversed"
    APPROVAL_REQUESTED = "approval.requested"
    APPROVAL_RESOLVED = "approval.resolved"
    DEBUG_POPUP = "debug.popup"


@dataclass(frozen=True, slots=True)
class Event:
    execution_id: str
    seq: int
    type: EventType
    #: Unix time in seconds.
    timestamp: float
    workflow_id: str = ""
    node_id: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


# Made three times per node run: the faster __init__ (same signature).
fast_init(Event)
