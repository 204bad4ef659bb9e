"""Human steps: ``human.approval`` waits for someone to approve or reject.

The first run raises ``WaitForApproval``: the execution becomes ``waiting`` and releases its
worker. When the decision arrives the node runs again with ``ctx.decision`` set and fires:

- ``approved`` or ``rejected`` with the input ``value`` unchanged, so the data flows on into
  the chosen branch exactly as it came in;
- ``decision`` (always) with ``{"approved", "by", "comment", "at"}`` for whoever needs to
  know who decided and why (``{{ $node.<id>.decision.by }}``).

In simulate mode a ``pinned_output`` is returned when given (to script the decision);
otherwise the node waits for a real decision as in a normal run.
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
from runnel.engine.signals import WaitForApproval
from runnel.nodes._support import PINNED_OUTPUT, as_text, pinned_output

__all__ = ["NODE_TYPES", "Approval"]

_MESSAGE = ConfigField(
    "message", FieldType.STRING, description="What the approver is asked (default: generic)."
)


class Approval:
    """Wait for an approval decision, then branch on it."""

    manifest = NodeManifest(
        type="human.approval",
        category="human",
        description="Wait for a person to approve or reject",
        aliases=("approval",),
        config=(_MESSAGE, PINNED_OUTPUT),
        inputs=(PortSpec("value", "Data passed on to the chosen branch"),),
        outputs=(
            PortSpec("approved", "Fires with the input value when approved"),
            PortSpec("rejected", "Fires with the input value when rejected"),
            PortSpec("decision", "{approved, by, comment, at}"),
        ),
        kind="CONTROL_FLOW",
    )

    async def run(self, ctx: NodeContext) -> NodeOutput:
        """Raise ``WaitForApproval`` until decided; then fire the branch and ``decision``."""
        pinned = pinned_output(ctx)
        if pinned is not None:
            return pinned
        decision = ctx.decision
        if decision is None:
            message = ctx.config.get(_MESSAGE.name)
            text = f"Approve {ctx.node.label}?" if message is None else as_text(message)
            raise WaitForApproval(text)
        details: dict[str, Any] = {
            "approved": decision.approved,
            "by": decision.by,
            "comment": decision.comment,
            "at": decision.at,
        }
        port = "approved" if decision.approved else "rejected"
        return {port: ctx.inputs.get("value"), "decision": details}


NODE_TYPES: tuple[NodeType, ...] = (Approval(),)
