"""``logic.if`` and ``logic.switch``: which ports fire, with what."""

from __future__ import annotations

from typing import Any

import pytest

from runnel.engine.signals import NodeFailure
from runnel.nodes.logic import If, Switch, switch_ports
from runnel.testing.nodes import run_node


@pytest.mark.parametrize("condition", [True, 1, "yes", "true", [0], {"a": 1}, 0.5, "anything"])
async def test_if_true(condition: Any) -> None:
    out, _ = await run_node(If(), inputs={"value": {"n": 1}}, config={"condition": condition})
    assert out == {"true": {"n": 1}}


@pytest.mark.parametrize(
    "condition",
    [
        False,
        0,
        0.0,
        None,
        "",
        "0",
        "false",
        "FALSE",
        " False ",
        "no",
        "off",
        "null",
        "None",
        [],
        {},
    ],
)
async def test_if_false(condition: Any) -> None:
    out, _ = await run_node(If(), inputs={"value": "data"}, config={"condition": condition})
    assert out == {"false": "data"}


async def test_if_without_condition_fails() -> None:
    with pytest.raises(NodeFailure, match=r"logic\.if needs config 'condition'") as info:
        await run_node(If(), inputs={"value": 1})
    assert info.value.kind == "config"


CASES = [
    {"port": "small", "when": False},
    {"port": "one", "value": 1},
    {"port": "odd", "value": 1},
    {"port": "flag", "value": True},
]


async def test_switch_fires_the_first_matching_case_with_the_input() -> None:
    out, _ = await run_node(Switch(), inputs={"value": 1}, config={"cases": CASES})
    assert out == {"one": 1}


async def test_switch_all_matches_fires_every_match() -> None:
    out, _ = await run_node(
        Switch(), inputs={"value": 1}, config={"cases": CASES, "all_matches": True}
    )
    assert out == {"one": 1, "odd": 1}


async def test_switch_does_not_confuse_true_with_one() -> None:
    out, _ = await run_node(Switch(), inputs={"value": True}, config={"cases": CASES})
    assert out == {"flag": True}


async def test_switch_falls_back_to_default() -> None:
    out, _ = await run_node(Switch(), inputs={"value": 7}, config={"cases": CASES})
    assert out == {"default": 7}


async def test_switch_compares_config_value_but_passes_the_input_on() -> None:
    order = {"status": "paid", "id": 4}
    cases = [{"port": "new", "value": "new"}, {"port": "paid", "value": "paid"}]
    out, _ = await run_node(
        Switch(), inputs={"value": order}, config={"cases": cases, "value": "paid"}
    )
    assert out == {"paid": order}


async def test_switch_when_conditions_use_truthiness() -> None:
    cases = [{"port": "a", "when": "false"}, {"port": "b", "when": "true"}]
    out, _ = await run_node(Switch(), inputs={"value": 0}, config={"cases": cases})
    assert out == {"b": 0}


async def test_switch_without_input_fires_the_compared_value() -> None:
    out, _ = await run_node(Switch(), config={"cases": CASES, "value": 1})
    assert out == {"one": 1}


@pytest.mark.parametrize(
    ("cases", "message"),
    [
        (None, "config 'cases' must be a list of cases"),
        ("x", "config 'cases' must be a list of cases"),
        ([1], r"config 'cases'\[0\] must be an object with 'port'"),
        ([{"value": 1}], r"config 'cases'\[0\] needs a non-empty 'port' name"),
        (
            [{"port": "a", "value": 1}, {"port": "b"}],
            r"\[1\] needs exactly one of 'value' or 'when'",
        ),
        ([{"port": "a", "value": 1, "when": True}], "needs exactly one of 'value' or 'when'"),
    ],
)
async def test_switch_bad_cases(cases: Any, message: str) -> None:
    with pytest.raises(NodeFailure, match=message) as info:
        await run_node(Switch(), inputs={"value": 1}, config={"cases": cases})
    assert info.value.kind == "config"


def test_switch_ports_follow_the_cases_and_never_fail() -> None:
    assert switch_ports({"cases": CASES}) == ("small", "one", "odd", "flag", "default")
    assert Switch.manifest.output_port_names({"cases": CASES})[-1] == "default"
    assert switch_ports({"cases": [{"port": "default", "value": 1}]}) == ("default",)
    assert switch_ports({"cases": "{{ $vars.CASES }}"}) == ("default",)
    assert switch_ports({"cases": [None, {"port": 3}, {"port": "ok"}]}) == ("ok", "default")
    assert switch_ports({}) == ("default",)
