"""Branching: ``logic.if`` and ``logic.switch`` fire some output ports and leave the others
dead, so only the chosen branch runs (dead-path elimination does the rest).

Conditions are rendered by the executor before the node runs, so a condition is a value:
Python truthiness decides, except that the strings ``""``, ``"0"``, ``"false"``, ``"no"``,
``"off"``, ``"null"`` and ``"none"`` (any case) are false (see ``_support.truthy``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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
from runnel.nodes._support import truthy

__all__ = ["NODE_TYPES", "If", "Switch", "SwitchCase", "parse_cases", "switch_ports"]

DEFAULT_PORT = "default"

_CONDITION = ConfigField(
    "condition",
    FieldType.ANY,
    required=True,
    description='Decides the branch; usually an expression such as "{{ $input.value.ok }}".',
)
_CASES = ConfigField(
    "cases",
    FieldType.ARRAY,
    required=True,
    description='Cases in order: {"port": name, "value": v} (fires when the compared value '
    'equals v) or {"port": name, "when": condition}.',
)
_SWITCH_VALUE = ConfigField(
    "value", FieldType.ANY, description="The value the cases compare with (default: the input)."
)
_ALL_MATCHES = ConfigField(
    "all_matches",
    FieldType.BOOLEAN,
    default=False,
    description="Fire every matching case instead of the first one.",
)


class If:
    """Fire ``true`` or ``false`` with the input value, as the condition decides."""

    manifest = NodeManifest(
        type="logic.if",
        category="logic",
        description="Branch on a condition",
        aliases=("if",),
        config=(_CONDITION,),
        inputs=(PortSpec("value", "Value passed to the chosen branch"),),
        outputs=(
            PortSpec("true", "Fires when the condition holds"),
            PortSpec("false", "Fires when it does not"),
        ),
        kind="LOGIC",
        pure=True,
    )

    async def run(self, ctx: NodeContext) -> NodeOutput:
        """Fires exactly one of ``true`` / ``false``."""
        if _CONDITION.name not in ctx.config:
            raise NodeFailure("logic.if needs config 'condition'", kind="config")
        port = "true" if truthy(ctx.config[_CONDITION.name]) else "false"
        return {port: ctx.inputs.get("value")}


@dataclass(frozen=True, slots=True)
class SwitchCase:
    """One case of ``logic.switch``: compare with ``value``, or test ``when``."""

    port: str
    has_value: bool
    value: Any = None
    when: Any = None

    def matches(self, subject: Any) -> bool:
        """Whether this case fires for ``subject`` (the compared value)."""
        if self.has_value:
            return _same(subject, self.value)
        return truthy(self.when)


def parse_cases(raw: Any) -> tuple[SwitchCase, ...]:
    """Check and read the ``cases`` config; raises ``NodeFailure`` naming the bad case."""
    if not isinstance(raw, Sequence) or isinstance(raw, str | bytes):
        raise NodeFailure("config 'cases' must be a list of cases", kind="config")
    cases: list[SwitchCase] = []
    for index, item in enumerate(raw):
        where = f"config 'cases'[{index}]"
        if not isinstance(item, Mapping):
            raise NodeFailure(f"{where} must be an object with 'port'", kind="config")
        port = item.get("port")
        if not isinstance(port, str) or not port:
            raise NodeFailure(f"{where} needs a non-empty 'port' name", kind="config")
        has_value, has_when = "value" in item, "when" in item
        if has_value == has_when:
            raise NodeFailure(f"{where} needs exactly one of 'value' or 'when'", kind="config")
        cases.append(SwitchCase(port, has_value, item.get("value"), item.get("when")))
    return tuple(cases)


def switch_ports(config: Mapping[str, Any]) -> tuple[str, ...]:
    """Output ports of a switch with this (possibly unrendered) config: cases, then default.

    Must not fail: validation calls it on configs that may be wrong in other ways.
    """
    ports: list[str] = []
    raw = config.get("cases")
    if isinstance(raw, Sequence) and not isinstance(raw, str | bytes):
        for item in raw:
            port = item.get("port") if isinstance(item, Mapping) else None
            if isinstance(port, str) and port and port not in ports:
                ports.append(port)
    if DEFAULT_PORT not in ports:
        ports.append(DEFAULT_PORT)
    return tuple(ports)


class Switch:
    """Fire the port of the first matching case (or of every match), else ``default``.

    The fired port carries the input ``value`` (or, when the node has no input, the compared
    value), so data flows on unchanged whichever branch is taken.
    """

    manifest = NodeManifest(
        type="logic.switch",
        category="logic",
        description="Branch to one of several ports",
        aliases=("switch",),
        config=(_CASES, _SWITCH_VALUE, _ALL_MATCHES),
        inputs=(PortSpec("value", "Value compared (unless config 'value') and passed on"),),
        outputs=(PortSpec(DEFAULT_PORT, "Fires when no case matches"),),
        output_ports_for=switch_ports,
        kind="LOGIC",
        pure=True,
    )

    async def run(self, ctx: NodeContext) -> NodeOutput:
        """Fires the matching case ports, or ``default``."""
        cases = parse_cases(ctx.config.get(_CASES.name))
        has_input = "value" in ctx.inputs
        subject = ctx.config.get(_SWITCH_VALUE.name)
        if subject is None:
            subject = ctx.inputs.get("value")
        payload = ctx.inputs["value"] if has_input else subject
        every = truthy(ctx.config.get(_ALL_MATCHES.name, False))
        fired: dict[str, Any] = {}
        for case in cases:
            if case.matches(subject):
                fired[case.port] = payload
                if not every:
                    break
        return fired or {DEFAULT_PORT: payload}


def _same(a: Any, b: Any) -> bool:
    # Python says True == 1 and False == 0; a switch on a flag must not match a count.
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    return bool(a == b)


NODE_TYPES: tuple[NodeType, ...] = (If(), Switch())
