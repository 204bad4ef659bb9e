"""Reading the events socket in the tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from websockets.sync.client import ClientConnection

__all__ = ["read_until", "read_until_completed"]

#: Seconds to wait for one message before the test fails (nothing here sleeps).
MESSAGE_TIMEOUT = 30


def read_until(
    ws: ClientConnection, done: Callable[[dict[str, Any]], bool], execution_id: str | None = None
) -> list[dict[str, Any]]:
    """Messages (of ``execution_id`` if given) up to and including the first ``done`` one."""
    messages: list[dict[str, Any]] = []
    while True:
        message = json.loads(ws.recv(timeout=MESSAGE_TIMEOUT))
        if execution_id is not None and message.get("execution_id") != execution_id:
            continue
        messages.append(message)
        if done(message):
            return messages


def read_until_completed(ws: ClientConnection, execution_id: str) -> list[dict[str, Any]]:
    return read_until(ws, lambda m: m["type"] == "WorkflowCompleted", execution_id)
