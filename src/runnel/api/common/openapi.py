"""OpenAPI helpers: documented-only request bodies and the standard error responses."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

__all__ = ["body_schema", "error_responses", "install_openapi"]

_REF = "#/components/schemas/{model}"

#: Models whose schemas the documented-only bodies refer to, per app.
_EXTRA_MODELS = "runnel_openapi_models"

_DESCRIPTIONS = {
    400: "Malformed or invalid request (the message names the field and the problem)",
    401: "Missing, wrong, expired or revoked API key",
    404: "No such resource",
    409: "Conflict with the current state",
    413: "Request body over the configured limit",
    429: "Rate limit exceeded; see Retry-After",
    500: "The execution failed (it is recorded)",
}


def error_responses(model: type[BaseModel], *statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each status documented with the dialect's error model."""
    return {
        status: {"model": model, "description": _DESCRIPTIONS.get(status, "Error")}
        for status in statuses
    }


def body_schema(model: type[BaseModel], description: str = "") -> dict[str, Any]:
    """``openapi_extra=`` for a route that reads a JSON body itself but documents it as
    ``model`` (register the model with ``install_openapi``)."""
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {
                "application/json": {"schema": {"$ref": _REF.format(model=model.__name__)}}
            },
        }
    }


def install_openapi(app: FastAPI, models: Iterable[type[BaseModel]]) -> None:
    """Generate the app's OpenAPI document once, with ``models`` (and the models they use)
    added to ``components.schemas``."""
    registered: list[type[BaseModel]] = getattr(app.state, _EXTRA_MODELS, [])
    registered.extend(models)
    setattr(app.state, _EXTRA_MODELS, registered)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            tags=app.openapi_tags,
        )
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for model in registered:
            schema = model.model_json_schema(ref_template=_REF)
            for name, definition in schema.pop("$defs", {}).items():
                schemas.setdefault(name, definition)
            schemas.setdefault(model.__name__, schema)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
