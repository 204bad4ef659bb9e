"""``transform.json_parse``, ``transform.json_stringify`` and ``transform.set``."""

from __future__ import annotations

import json
from typing import Any

import pytest

from runnel.engine.signals import NodeFailure
from runnel.nodes.transform import JsonParse, JsonStringify, SetValues, set_values
from runnel.testing.nodes import run_node


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ('{"a": [1, 2.5, null, true]}', {"a": [1, 2.5, None, True]}),
        (b'"bytes"', "bytes"),
        ("123456789012345678901234567890", 123456789012345678901234567890),  # beyond 64 bits
        ("  []  ", []),
    ],
)
async def test_parse(text: str | bytes, parsed: Any) -> None:
    out, _ = await run_node(JsonParse(), inputs={"json": text})
    assert out == {"parsed": parsed}


async def test_parse_reports_line_column_and_offset() -> None:
    with pytest.raises(NodeFailure) as info:
        await run_node(JsonParse(), inputs={"json": '{\n  "a": 1,\n  "b": }'})
    failure = info.value
    assert failure.kind == "json"
    assert failure.message.startswith("invalid JSON at line 3, column 8 (char 19): Expecting value")
    assert "near" in failure.message
    assert failure.details == {"line": 3, "column": 8, "position": 19}


async def test_parse_of_empty_text_fails_at_the_start() -> None:
    with pytest.raises(NodeFailure, match=r"invalid JSON at line 1, column 1 \(char 0\)"):
        await run_node(JsonParse(), inputs={"json": ""})


async def test_parse_without_text_or_of_a_non_text_value_fails() -> None:
    with pytest.raises(NodeFailure, match="no JSON text"):
        await run_node(JsonParse())
    with pytest.raises(NodeFailure, match="expects JSON text, got dict") as info:
        await run_node(JsonParse(), inputs={"json": {"already": "parsed"}})
    assert info.value.kind == "type"
    with pytest.raises(NodeFailure, match="not UTF-8"):
        await run_node(JsonParse(), inputs={"json": b'"\xff"'})


async def test_stringify_is_compact_by_default() -> None:
    out, _ = await run_node(JsonStringify(), inputs={"value": {"b": 1, "a": [True, None]}})
    assert out == {"json": '{"b":1,"a":[true,null]}'}


async def test_stringify_with_indent_and_sorted_keys() -> None:
    value = {"b": 1, "a": "é"}
    out, _ = await run_node(
        JsonStringify(), inputs={"value": value}, config={"indent": 2, "sort_keys": True}
    )
    assert out["json"] == '{\n  "a": "é",\n  "b": 1\n}'


async def test_stringify_turns_non_json_values_into_their_json_form() -> None:
    out, _ = await run_node(
        JsonStringify(), inputs={"value": {"raw": b"\x00\x01", 1: float("nan"), "big": 2**70}}
    )
    assert json.loads(out["json"]) == {"raw": "AAE=", "1": None, "big": 2**70}


async def test_stringify_refuses_a_bad_indent() -> None:
    with pytest.raises(NodeFailure, match="config 'indent' must be at most 16"):
        await run_node(JsonStringify(), inputs={"value": 1}, config={"indent": 99})


async def test_set_copies_the_input_and_sets_values() -> None:
    source = {"keep": 1, "over": "old"}
    out, _ = await run_node(
        SetValues(), inputs={"value": source}, config={"values": {"over": "new", "add": [1]}}
    )
    assert out == {"value": {"keep": 1, "over": "new", "add": [1]}}
    assert source == {"keep": 1, "over": "old"}  # the input is not changed


async def test_set_dotted_keys_nest_without_touching_the_input() -> None:
    tags = ["a"]
    source: dict[str, Any] = {"user": {"name": "ana", "tags": tags}, "n": 1}
    values = {"user.email": "a@x.org", "user.address.city": "Lisbon", "n": 2}
    out, _ = await run_node(SetValues(), inputs={"value": source}, config={"values": values})
    assert out["value"] == {
        "user": {"name": "ana", "tags": ["a"], "email": "a@x.org", "address": {"city": "Lisbon"}},
        "n": 2,
    }
    assert source == {"user": {"name": "ana", "tags": ["a"]}, "n": 1}
    assert out["value"]["user"]["tags"] is tags  # shallow: no deep copy


async def test_set_replaces_a_non_object_on_a_dotted_path() -> None:
    assert set_values({"a": 5}, {"a.b": 1}) == {"a": {"b": 1}}


async def test_set_does_not_mutate_an_object_that_came_from_config() -> None:
    inner = {"x": 1}
    assert set_values({}, {"a": inner, "a.y": 2}) == {"a": {"x": 1, "y": 2}}
    assert inner == {"x": 1}


@pytest.mark.parametrize("source", [None, "text", [1, 2], 3])
async def test_set_starts_from_an_empty_object_for_non_objects(source: Any) -> None:
    out, _ = await run_node(SetValues(), inputs={"value": source}, config={"values": {"k": 1}})
    assert out == {"value": {"k": 1}}


@pytest.mark.parametrize("keep", [False, "false"])
async def test_set_without_keep_input_starts_empty(keep: Any) -> None:
    out, _ = await run_node(
        SetValues(), inputs={"value": {"old": 1}}, config={"values": {"k": 1}, "keep_input": keep}
    )
    assert out == {"value": {"k": 1}}


async def test_set_refuses_bad_values() -> None:
    with pytest.raises(NodeFailure, match="config 'values' must be an object, got list"):
        await run_node(SetValues(), config={"values": [1]})
    with pytest.raises(NodeFailure, match=r"invalid key path 'a\.\.b'"):
        await run_node(SetValues(), config={"values": {"a..b": 1}})
