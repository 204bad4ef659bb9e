"""Notifications: ``notify.channel`` sends a message through a notification channel.

The channel (a webhook, a Slack incoming webhook, an email account) is configured once on
the server (flow8 ``/api/channels``); the node names it by id or name and sends ``title``,
``text`` and optional ``data``. The host delivers it (``services.notify``), checking that
the workflow may use that channel. Fires ``value`` with the input passed on unchanged, and
``delivery`` with ``{channel, type, detail}``. In simulate mode nothing is sent: it returns
``pinned_output`` when given, else a dry-run description.
"""

from __future__ import annotations

from typing import Any

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
from runnel.nodes._support import PINNED_OUTPUT, as_text, pinned_output

__all__ = ["NODE_TYPES", "NotifyChannel"]

_CHANNEL = ConfigField(
    "channel", FieldType.STRING, required=True, description="The channel's id or name."
)
_TITLE = ConfigField("title", FieldType.STRING, description="Subject or headline.")
_TEXT = ConfigField(
    "text", FieldType.STRING, description="The message (default: the input as JSON)."
)
_DATA = ConfigField("data", FieldType.ANY, description="Structured data sent along (webhooks).")


class NotifyChannel:
    """Send a message through a configured notification channel."""

    manifest = NodeManifest(
        type="notify.channel",
        category="notify",
        description="Send a message through a notification channel",
        aliases=("notify",),
        config=(_CHANNEL, _TITLE, _TEXT, _DATA, PINNED_OUTPUT),
        inputs=(PortSpec("value", "Passed on unchanged; the default text"),),
        outputs=(
            PortSpec("value", "The input, unchanged"),
            PortSpec("delivery", "{channel, type, detail}"),
        ),
        side_effects=True,
        kind="ACTION",
    )

    async def run(self, ctx: NodeContext) -> NodeOutput:
        """Deliver the message (or describe it in simulate mode)."""
        pinned = pinned_output(ctx)
        if pinned is not None:
            return pinned
        channel = ctx.config.get(_CHANNEL.name)
        if not isinstance(channel, str) or not channel.strip():
            raise NodeFailure("notify.channel needs config 'channel' (an id or a name)", "config")
        value = ctx.inputs.get("value")
        text = ctx.config.get(_TEXT.name)
        message: dict[str, Any] = {
            "title": as_text(ctx.config.get(_TITLE.name) or f"runnel: {ctx.workflow_id}"),
            "text": as_text(text if text is not None else value),
            "data": ctx.config.get(_DATA.name) or {},
        }
        if ctx.simulate:
            ctx.emit("info", f"dry run: would notify channel {channel!r}")
            return {"value": value, "delivery": {"channel": channel, "dry_run": True, **message}}
        send = ctx.services.notify
        if send is None:
            raise NodeFailure(
                "notify.channel cannot run here: the host has no notification channels",
                kind="unavailable",
            )
        delivery = await send(channel.strip(), message, ctx)
        ctx.emit("info", f"notified channel {channel!r}")
        return {"value": value, "delivery": dict(delivery)}


NODE_TYPES: tuple[NodeType, ...] = (NotifyChannel(),)
