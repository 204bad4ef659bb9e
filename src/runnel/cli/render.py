"""What ``runnel run`` shows a person: events as they happen, then a table of the nodes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from runnel.model.events import Event, EventType
from runnel.model.values import to_json
from runnel.model.workflow import Workflow

__all__ = ["LiveEventPrinter", "QuietSink", "node_table", "short_json", "status_style"]

_STYLES = {
    "succeeded": "green",
    "failed": "red",
    "cancelled": "red",
    "waiting": "yellow",
    "paused": "yellow",
    "skipped": "dim",
    "filtered": "dim",
    "pending": "dim",
    "running": "cyan",
}


def _took(duration: Any) -> str:
    """`` in 1.2 ms`` for a number of milliseconds, else nothing."""
    if isinstance(duration, int | float) and not isinstance(duration, bool):
        return f" in {duration:.1f} ms"
    return ""


def status_style(status: str) -> str:
    """The Rich style of a node or execution status."""
    return _STYLES.get(status, "")


def short_json(value: Any, limit: int = 60) -> str:
    """Compact JSON of ``value``, cut to ``limit`` characters with an ellipsis."""
    text = json.dumps(to_json(value), ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 1] + "…"


class LiveEventPrinter:
    """An ``EventSink`` that prints each event on one line as soon as it is published."""

    def __init__(self, console: Console) -> None:
        self._console = console
        #: The first execution seen; events of others (sub-workflows) are indented.
        self._root: str | None = None
        #: Set when stdout went away (a closed pipe): the run goes on without printing.
        self._closed = False

    def publish(self, event: Event) -> None:
        """Print ``event``; a rendering problem never reaches the executor."""
        if self._closed:
            return
        if self._root is None:
            self._root = event.execution_id
        try:
            line = self._line(event)
        except Exception as exc:  # an odd payload must not break the run
            line = Text(f"{event.type.value} (unprintable: {exc})", style="dim")
        if line is None:
            return
        if event.execution_id != self._root:
            line = Text("    ┆ ", style="dim") + line
        try:
            self._console.print(line, soft_wrap=True, highlight=False)
        except (BrokenPipeError, SystemExit):
            # Rich turns a closed stdout (``runnel run ... | head``) into SystemExit; a sink
            # must not raise into the executor, so the execution finishes unprinted.
            self._closed = True

    def _line(self, event: Event) -> Text | None:
        data = event.data
        node = event.node_id or ""
        kind = event.type
        if kind is EventType.EXECUTION_STARTED:
            attempt = int(data.get("attempt") or 1)
            again = f", workflow attempt {attempt}" if attempt > 1 else ""
            mode = data.get("mode", "")
            return Text(f"▶ execution {event.execution_id} started ({mode}{again})")
        if kind is EventType.NODE_STARTED:
            attempt = int(data.get("attempt") or 1)
            again = f", attempt {attempt}" if attempt > 1 else ""
            return Text(f"  ▸ {node} ({data.get('node_type', '')}{again}) started", style="cyan")
        if kind is EventType.NODE_FINISHED:
            return self._finished(node, data)
        if kind is EventType.NODE_FAILED:
            error = data.get("error") or {}
            message = error.get("message", "") if isinstance(error, Mapping) else str(error)
            retry = " (will retry)" if data.get("will_retry") else ""
            text = f"  ✗ {node} failed on attempt {data.get('attempt', '?')}{retry}: {message}"
            return Text(text, style="red")
        if kind is EventType.NODE_EVENT:
            return self._node_event(node, data)
        if kind is EventType.DEBUG_POPUP:
            content = data.get("content")
            body = content if isinstance(content, str) else short_json(content, 200)
            return Text(f"  ◆ {node} popup {data.get('title', '')!s}: {body}", style="magenta")
        if kind is EventType.APPROVAL_REQUESTED:
            message = data.get("message") or "approval needed"
            return Text(f"  ⏸ {node} waits for approval: {message}", style="yellow")
        if kind is EventType.APPROVAL_RESOLVED:
            verdict = "approved" if data.get("approved") else "rejected"
            by = f" by {data['by']}" if data.get("by") else ""
            return Text(f"  ✔ {node} {verdict}{by}", style="yellow")
        if kind is EventType.EXECUTION_FINISHED:
            status = str(data.get("status", ""))
            took = _took(data.get("duration_ms"))
            return Text(f"■ execution {status}{took}", style=status_style(status))
        return None  # edge traversals and status changes: the table tells the rest

    def _finished(self, node: str, data: Mapping[str, Any]) -> Text:
        status = str(data.get("status", "succeeded"))
        took = "" if status in ("skipped", "filtered") else _took(data.get("duration_ms"))
        outputs = data.get("outputs")
        shown = f" → {short_json(outputs)}" if outputs else ""
        mark = "✓" if status == "succeeded" else "·"
        return Text(f"  {mark} {node} {status}{took}{shown}", style=status_style(status))

    def _node_event(self, node: str, data: Mapping[str, Any]) -> Text:
        kind = str(data.get("kind", "info"))
        message = str(data.get("message", ""))
        if kind == "progress" and data.get("percent") is not None:
            message = f"{data['percent']}% {message}".rstrip()
        elif kind == "data":
            message = f"{data.get('port', '')} = {short_json(data.get('value'), 200)}"
        elif kind == "log" and data.get("level"):
            kind = f"log {data['level']}"
        style = "yellow" if kind == "warning" else ""
        return Text(f"  · {node} [{kind}] {message}", style=style)


def node_table(workflow: Workflow, summary: Mapping[str, Any]) -> Table:
    """One row per node of ``workflow`` from a ``summarize`` document.

    The status shows the number of tries when a node ran more than once.
    """
    table = Table(title=f"{workflow.name or workflow.id}: {summary['status']}", box=box.SIMPLE)
    table.add_column("node", overflow="fold", min_width=4)
    table.add_column("type", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("duration", justify="right", no_wrap=True)
    table.add_column("output / error", overflow="fold", min_width=16, ratio=1)
    nodes: Mapping[str, Any] = summary["nodes"]
    for node in workflow.nodes:
        row = nodes[node.id]
        status = row["status"]
        tries = f" ({row['attempts']} tries)" if row["attempts"] > 1 else ""
        if row["error"]:
            shown = Text(row["error"], style="red")
        elif row["outputs"] is not None:
            shown = Text(short_json(row["outputs"], 80))
        else:
            shown = Text("")
        duration = row["duration_ms"] if row["attempts"] else None
        table.add_row(
            Text(node.id),
            Text(node.type, style="dim"),
            Text(status + tries, style=status_style(status)),
            f"{duration:.1f} ms" if duration is not None else "",
            shown,
        )
    return table


class QuietSink:
    """An ``EventSink`` that drops every event (``--json`` prints only the result)."""

    def publish(self, event: Event) -> None:
        """Drop ``event``."""
        del event
