"""The engine's public content: language dictionaries, the news feed, component icons."""

from __future__ import annotations

import functools
import json
import logging
import re
from pathlib import Path
from typing import Any, Final

from fastapi import APIRouter, Request
from starlette.responses import Response

from runnel.api.common.jsonbody import JsonResponse
from runnel.api.common.problems import ApiProblem
from runnel.api.flowork.engine_api.context import context_of
from runnel.api.flowork.engine_api.icons import DEFAULT_ICON, icon_for
from runnel.services.kill_switch import check_component_id

__all__ = ["LOCALES_DIR", "available_languages", "router"]

log = logging.getLogger(__name__)

LOCALES_DIR: Final = Path(__file__).resolve().parent / "locales"
_LANG: Final = re.compile(r"([a-z]{2,3})(?:[-_][a-z0-9]{2,8})?")
_KIND: Final = re.compile(r"[a-z_]{1,32}")
_CACHE_A_DAY: Final = {"Cache-Control": "public, max-age=86400"}

router = APIRouter(prefix="/api/v1")


def available_languages() -> list[str]:
    return sorted(path.stem for path in LOCALES_DIR.glob("*.json"))


@functools.cache
def _dictionary(code: str) -> dict[str, Any] | None:
    path = LOCALES_DIR / f"{code}.json"
    if not path.is_file():
        return None
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


@router.get("/localization/{lang_code}")
async def localization(lang_code: str) -> Response:
    """The dictionary of ``lang_code`` (``en``, ``id``; ``en-US`` falls back to ``en``)."""
    match = _LANG.fullmatch(lang_code.lower())
    if match is not None:
        for code in (lang_code.lower().replace("_", "-"), match.group(1)):
            dictionary = _dictionary(code)
            if dictionary is not None:
                return JsonResponse(dictionary, headers=_CACHE_A_DAY)
    languages = ", ".join(available_languages())
    raise ApiProblem(404, f"No dictionary for language {lang_code!r}; available: {languages}")


@router.get("/news")
async def news(request: Request) -> Response:
    """The news feed: the JSON of the configured file (``RUNNEL_NEWS_FILE``), ``[]``
    without one."""
    path = context_of(request).news_file
    if path is None:
        return JsonResponse([])
    try:
        return JsonResponse(_read_news(path, path.stat().st_mtime_ns))
    except (OSError, ValueError) as error:
        log.warning("the news file %s cannot be served: %s", path, error)
        raise ApiProblem(503, "The news feed is unavailable: its file cannot be read") from None


@functools.lru_cache(maxsize=4)
def _read_news(path: Path, mtime_ns: int) -> Any:
    # Cached per modification time: an edited file is served at once.
    return json.loads(path.read_text(encoding="utf-8"))


@router.get("/components/{component_type}/{component_id}/icon")
async def component_icon(component_type: str, component_id: str, request: Request) -> Response:
    """The SVG of a component: a built-in node type (by id or alias) has its own, anything
    else gets the default."""
    if not _KIND.fullmatch(component_type):
        raise ApiProblem(400, "Invalid component type: expected 1 to 32 of a-z and _")
    node_type = context_of(request).registry.find(check_component_id(component_id))
    svg = DEFAULT_ICON if node_type is None else icon_for(node_type.manifest)
    return Response(svg, media_type="image/svg+xml", headers=_CACHE_A_DAY)
