"""Debugging nodes: ``debug.log`` writes a log line, ``debug.popup`` shows a popup in the GUI.

Both only emit events (no effect on the world), so they run in simulate mode too.
"""

from __future__ import annotations

from typing import Final

from runnel.engine.node import (
    ConfigField,
    FieldType,
    NodeContext,
    NodeManifest,
    NodeOutput,
    NodeType,
    PortSpec,
)
from runnel.engine.signals import NodeFailure
from runnel.nodes._support import as_text, option, param

__all__ = ["LOG_LEVELS", "NODE_TYPES", "DebugLog", "DebugPopup"]

#: Levels of ``debug.log``; Flowork's log levels in lower case (``warn`` is read as warning).
LOG_LEVELS: Final = ("debug", "info", "warning", "error", "success", "critical")

_MESSAGE = ConfigField(
    "message", FieldType.ANY, description="What to log (else the `message` input)."
)
_LEVEL = ConfigField("level", FieldType.STRING, default="info", enum=LOG_LEVELS)
_TITLE = ConfigField("title", FieldType.STRING, description="Popup title (default: node name).")
_CONTENT = ConfigField(
    "content", FieldType.ANY, description="Popup content: text or an object (else the input)."
)


class DebugLog:
    """Emit a log event with the message (objects as JSON) and pass the message on."""

    manifest = NodeManifest(
        type="debug.log",
        category="debug",
        description="Log values for debugging",
        aliases=("log",),
        config=(_MESSAGE, _LEVEL),
        inputs=(PortSpec("message", "Value to log"),),
        outputs=(PortSpec("message", "The logged value, unchanged"),),
        kind="ACTION",
        pure=True,
    )

    async def run(self, ctx: NodeContext) -> NodeOutput:
        """Log ``message`` at ``level``; fires ``message`` with the value."""
        level = str(option(ctx, _LEVEL)).strip().lower()
        if level == "warn":
            level = "warning"
        if level not in LOG_LEVELS:
            raise NodeFailure(
                f"config 'level' must be one of {', '.join(LOG_LEVELS)}, got {level!r}", "config"
            )
        message = param(ctx, "message")
        ctx.emit("log", as_text(message), level=level)
        return {"message": message}


class DebugPopup:
    """Emit a popup event (title, content) and pass the input through on ``value``."""

    manifest = NodeManifest(
        type="debug.popup",
        category="debug",
        description="Show a value in a popup in the GUI",
        aliases=("popup", "debug_popup_module"),
        config=(_TITLE, _CONTENT),
        inputs=(PortSpec("value", "Value to show and pass on"),),
        outputs=(PortSpec("value", "The input, unchanged"),),
        kind="ACTION",
        pure=True,
    )

    async def run(self, ctx: NodeContext) -> NodeOutput:
        """Emit ``popup`` with the title and content; fires ``value`` with the input."""
        value = ctx.inputs.get("value")
        title = option(ctx, _TITLE)
        content = option(ctx, _CONTENT)
        ctx.emit(
            "popup",
            title=ctx.node.label if title is None else as_text(title),
            content=value if content is None else content,
        )
        return {"value": value}


NODE_TYPES: tuple[NodeType, ...] = (DebugLog(), DebugPopup())
