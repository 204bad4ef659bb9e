"""Component icons: an SVG for every built-in node type, drawn from its manifest, and a
default for anything else.

An icon is a rounded square in its family's colour with the type's initials (``http.request``
-> ``HR``); the same type always gets the same icon. Nothing is taken from the request but
the manifest's own id, so no caller text reaches the SVG.
"""

from __future__ import annotations

import functools
import re
from typing import Final

from runnel.engine.node import NodeManifest

__all__ = ["DEFAULT_ICON", "icon_for"]

_COLOURS: Final = {
    "http": "#2563eb",
    "debug": "#6b7280",
    "transform": "#7c3aed",
    "logic": "#d97706",
    "flow": "#0891b2",
    "data": "#059669",
    "human": "#db2777",
    "time": "#4f46e5",
    "notify": "#dc2626",
}
_OTHER_COLOUR: Final = "#475569"
_TEMPLATE: Final = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64"'
    ' role="img" aria-label="{label}">'
    '<rect x="2" y="2" width="60" height="60" rx="12" fill="{colour}"/>'
    '<text x="32" y="41" font-family="Helvetica, Arial, sans-serif" font-size="24"'
    ' font-weight="700" fill="#ffffff" text-anchor="middle">{initials}</text></svg>'
)
DEFAULT_ICON: Final = _TEMPLATE.format(label="component", colour=_OTHER_COLOUR, initials="?")
_WORD: Final = re.compile(r"[A-Za-z0-9]+")


@functools.cache
def icon_for(manifest: NodeManifest) -> str:
    """The SVG of one node type."""
    words = _WORD.findall(manifest.type)
    initials = "".join(word[0] for word in words[:2]).upper() or "?"
    colour = _COLOURS.get(manifest.category, _OTHER_COLOUR)
    return _TEMPLATE.format(label=".".join(words), colour=colour, initials=initials)
