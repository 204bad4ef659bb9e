"""Browsing files for the GUI: the configured roots and listings inside them.

Only the roots may be listed, and a path is inside a root only after it is resolved
(``..`` and symlinks followed), so a link that leads out of a root is refused like any
other path outside. Paths go out with ``/`` separators.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

__all__ = ["MAX_ENTRIES", "BrowseRefused", "FileBrowser", "default_browse_roots"]

#: Listings stop after this many entries (``truncated: true``).
MAX_ENTRIES: Final = 1000


class BrowseRefused(Exception):
    """A path that may not be listed; ``str()`` says why."""


@dataclass(frozen=True, slots=True)
class Listing:
    path: str
    items: list[dict[str, Any]]
    truncated: bool


def default_browse_roots(data_dir: Path) -> tuple[Path, ...]:
    """``<data-dir>/files``: the one root when none is configured."""
    return (data_dir / "files",)


class FileBrowser:
    """Lists the roots and the directories inside them."""

    def __init__(self, roots: Sequence[Path], *, create: bool = False) -> None:
        #: The roots as configured; resolved on each use (a root may be made later).
        self._roots = tuple(Path(root).expanduser() for root in roots)
        self._create = create

    async def drives(self) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self._drives)

    async def listing(self, path: object) -> Listing:
        """The entries of directory ``path`` (directories first, then by name).
        ``BrowseRefused`` for anything outside the roots, missing, or not a directory."""
        if not isinstance(path, str) or not path.strip():
            raise BrowseRefused("path is required")
        return await asyncio.to_thread(self._listing, path)

    def _resolved_roots(self) -> list[Path]:
        roots: list[Path] = []
        for root in self._roots:
            if self._create:
                try:
                    root.mkdir(parents=True, exist_ok=True)
                except OSError:
                    continue
            if root.is_dir():
                roots.append(root.resolve())
        return roots

    def _drives(self) -> list[dict[str, Any]]:
        return [
            {"name": root.name or root.as_posix(), "type": "drive", "path": root.as_posix()}
            for root in self._resolved_roots()
        ]

    def _listing(self, text: str) -> Listing:
        if "\x00" in text:
            raise BrowseRefused("Access denied: the path is outside the browsable folders")
        asked = Path(text.strip())
        if not asked.is_absolute():
            raise BrowseRefused("Access denied: give an absolute path inside a browsable folder")
        try:
            resolved = asked.resolve(strict=True)
        except (OSError, RuntimeError):
            # Missing, or a symlink loop: say the same for both, inside a root or not.
            resolved = None
        roots = self._resolved_roots()
        if resolved is None:
            # Whether it exists is not told for paths outside the roots.
            lexical = Path(os.path.normpath(asked))
            if any(lexical == root or lexical.is_relative_to(root) for root in roots):
                raise BrowseRefused("Directory not found")
            raise BrowseRefused("Access denied: the path is outside the browsable folders")
        if not any(resolved == root or resolved.is_relative_to(root) for root in roots):
            raise BrowseRefused("Access denied: the path is outside the browsable folders")
        if not resolved.is_dir():
            raise BrowseRefused("Not a directory")
        items: list[dict[str, Any]] = []
        truncated = False
        try:
            with os.scandir(resolved) as entries:
                for entry in entries:
                    if len(items) >= MAX_ENTRIES:
                        truncated = True
                        break
                    items.append(_item(resolved, entry))
        except OSError as error:
            raise BrowseRefused(f"Cannot read the directory: {error.strerror}") from None
        items.sort(key=lambda item: (item["type"] != "directory", item["name"].lower()))
        return Listing(resolved.as_posix(), items, truncated)


def _item(parent: Path, entry: os.DirEntry[str]) -> dict[str, Any]:
    try:
        is_dir = entry.is_dir()  # follows links: a link to a folder is shown as one
    except OSError:
        is_dir = False
    return {
        "name": entry.name,
        "type": "directory" if is_dir else "file",
        "path": (parent / entry.name).as_posix(),
    }
