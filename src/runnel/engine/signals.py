"""Exceptions a node raises to ask the executor for something other than success."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["NodeFailure", "Suspend", "WaitForApproval", "WaitUntil"]


class NodeFailure(Exception):
    """A clear, expected failure of a node (retried like any other error)."""

    def __init__(self, message: str, kind: str = "node", **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.details: Mapping[str, Any] = details


class Suspend(Exception):
    """The node cannot finish now; the execution waits (and may be parked in the store)."""

    def __init__(self, wait: Mapping[str, Any]) -> None:
        super().__init__(wait.get("kind", "wait"))
        self.wait = wait


class WaitForApproval(Suspend):
    def __init__(self, message: str = "") -> None:
        super().__init__({"kind": "approval", "message": message})
        self.message = message


class WaitUntil(Suspend):
    """Wait until a point in time (unix seconds) and then run the node again."""

    def __init__(self, due_at: float) -> None:
        super().__init__({"kind": "timer", "due_at": due_at})
        self.due_at = due_at
