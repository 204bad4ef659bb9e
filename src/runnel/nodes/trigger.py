"""Trigger nodes: where a run starts. ``trigger.cron`` and ``trigger.prompt``.

A trigger node marks the start of a graph in the GUI (Flowork's ``cron_trigger`` and
``prompt_receiver_module``). What starts the execution (a schedule, a prompt, a person) is
outside the graph; at run time the node only passes the execution's inputs on: as a start
node it receives them whole on ``value`` (``runnel.engine.executor``), and fires them
unchanged. ``cron_string`` is kept for whatever schedules the workflow; the node itself does
not read it.
"""

from __future__ import annotations

from runnel.engine.node import (
    ConfigField,
    FieldType,
    NodeContext,
    NodeManifest,
    NodeOutput,
    NodeType,
    PortSpec,
)

__all__ = ["DEFAULT_CRON", "NODE_TYPES", "CronTrigger", "PromptTrigger"]

#: Flowork's default schedule of ``cron_trigger``.
DEFAULT_CRON = "*/5 * * * *"

_CRON = ConfigField(
    "cron_string",
    FieldType.STRING,
    default=DEFAULT_CRON,
    description="When the workflow runs (five-field cron); read by the scheduler, not the node.",
)
_INPUT = PortSpec("value", "The execution's inputs (a start node receives them whole)")
_OUTPUT = PortSpec("value", "The inputs, unchanged")


class CronTrigger:
    """Start of a scheduled workflow: fires its input on ``value``."""

    manifest = NodeManifest(
        type="trigger.cron",
        category="trigger",
        description="Start a workflow on a schedule (passes the run's inputs on)",
        aliases=("cron", "cron_trigger"),
        config=(_CRON,),
        inputs=(_INPUT,),
        outputs=(_OUTPUT,),
        kind="TRIGGER",
    )

    async def run(self, ctx: NodeContext) -> NodeOutput:
        """Fires ``value`` with the input."""
        return {"value": ctx.inputs.get("value")}


class PromptTrigger:
    """Start of a workflow run with a prompt: fires its input (the prompt) on ``value``."""

    manifest = NodeManifest(
        type="trigger.prompt",
        category="trigger",
        description="Start a workflow with a prompt (passes the run's inputs on)",
        aliases=("prompt", "prompt_receiver_module"),
        inputs=(_INPUT,),
        outputs=(_OUTPUT,),
        kind="TRIGGER",
    )

    async def run(self, ctx: NodeContext) -> NodeOutput:
        """Fires ``value`` with the input."""
        return {"value": ctx.inputs.get("value")}


NODE_TYPES: tuple[NodeType, ...] = (CronTrigger(), PromptTrigger())
