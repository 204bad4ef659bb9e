"""The ASGI app (``runnel.api.app``): one subpackage per dialect plus what they share."""

from __future__ import annotations

__all__: list[str] = []
