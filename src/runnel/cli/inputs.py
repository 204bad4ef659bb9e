"""Execution inputs from the command line: ``--input key=value`` and ``--inputs-json``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from runnel.cli.errors import UsageProblem
from runnel.model import values

__all__ = ["parse_inputs"]


def parse_inputs(pairs: Sequence[str], inputs_json: str | None) -> dict[str, Any]:
    """Merge ``--inputs-json`` (an object; typed values accepted) and ``--input`` pairs.

    A pair's value is read as JSON when it parses (``n=3``, ``flag=true``, ``obj={"a":1}``)
    and as a plain string otherwise (``url=https://example.com``). Pairs win over the JSON
    object for the same key.
    """
    inputs: dict[str, Any] = {}
    if inputs_json is not None:
        try:
            document = json.loads(inputs_json)
        except json.JSONDecodeError as exc:
            raise UsageProblem(f"--inputs-json is not valid JSON: {exc}") from None
        if not isinstance(document, dict):
            raise UsageProblem("--inputs-json must be a JSON object of port name -> value")
        for key, raw in document.items():
            inputs[key] = _decode(raw, f"--inputs-json {key}")
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise UsageProblem(f"--input expects key=value, got {pair!r}")
        inputs[key.strip()] = _decode(_parse_scalar(text), f"--input {key.strip()}")
    return inputs


def _parse_scalar(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _decode(raw: Any, where: str) -> Any:
    try:
        return values.decode(raw)
    except values.TypedValueError as exc:
        raise UsageProblem(f"{where}: {exc}") from None
