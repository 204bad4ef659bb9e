"""Data sources: ``data.static`` fires a constant from its config."""

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

__all__ = ["NODE_TYPES", "StaticData"]

_DATA = ConfigField(
    "data", FieldType.ANY, description="The value to fire (expressions are rendered first)."
)


class StaticData:
    """Fire the config ``data`` on ``data`` (``None`` when unset)."""

    manifest = NodeManifest(
        type="data.static",
        category="data",
        description="Provide a fixed value",
        aliases=("static", "static_data_provider_module"),
        config=(_DATA,),
        outputs=(PortSpec("data", "The configured value"),),
        kind="ACTION",
        pure=True,
    )

    async def run(self, ctx: NodeContext) -> NodeOutput:
        """Fires ``data``."""
        return {"data": ctx.config.get(_DATA.name)}


NODE_TYPES: tuple[NodeType, ...] = (StaticData(),)
