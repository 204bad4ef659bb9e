"""Flow Engine typed values: every variant both ways, plain JSON accepted, bad values named."""

from __future__ import annotations

import math
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import pytest

from runnel.model.values import TYPE_NAMES, TypedValueError, decode, encode, is_typed, to_json

VARIANTS: list[tuple[dict[str, Any], Any]] = [
    ({"type": "Null"}, None),
    ({"type": "Bool", "value": True}, True),
    ({"type": "Bool", "value": False}, False),
    ({"type": "Number", "value": 42}, 42),
    ({"type": "Number", "value": -1.5}, -1.5),
    ({"type": "String", "value": "GET"}, "GET"),
    ({"type": "String", "value": ""}, ""),
    ({"type": "Bytes", "value": [0, 104, 255]}, b"\x00h\xff"),
    ({"type": "Bytes", "value": []}, b""),
    ({"type": "Json", "value": {"raw": [1, {"type": "String"}]}}, {"raw": [1, {"type": "String"}]}),
    ({"type": "Json", "value": None}, None),
    (
        {"type": "Array", "value": [{"type": "Number", "value": 1}, {"type": "Null"}, "plain"]},
        [1, None, "plain"],
    ),
    (
        {
            "type": "Object",
            "value": {
                "a": {"type": "Bool", "value": True},
                "b": {"type": "Object", "value": {"c": {"type": "Bytes", "value": [1]}}},
                "d": 3,
            },
        },
        {"a": True, "b": {"c": b"\x01"}, "d": 3},
    ),
]


@pytest.mark.parametrize(("typed", "plain"), VARIANTS)
def test_decode_every_variant(typed: dict[str, Any], plain: Any) -> None:
    assert is_typed(typed)
    result = decode(typed)
    assert result == plain
    assert type(result) is type(plain)


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        0,
        7,
        -2.5,
        "",
        "text",
        b"\x00\x01",
        [],
        [1, [2, "x"]],
        {},
        {"a": {"b": None}},
    ],
)
def test_encode_then_decode_is_identity(value: Any) -> None:
    typed = encode(value)
    assert is_typed(typed)
    assert typed["type"] in TYPE_NAMES
    assert decode(typed) == value


@pytest.mark.parametrize(
    ("value", "typed"),
    [
        (None, {"type": "Null"}),
        (True, {"type": "Bool", "value": True}),
        (1, {"type": "Number", "value": 1}),
        (1.0, {"type": "Number", "value": 1.0}),
        ("s", {"type": "String", "value": "s"}),
        (b"\x05", {"type": "Bytes", "value": [5]}),
        (bytearray(b"\x06"), {"type": "Bytes", "value": [6]}),
        ((1,), {"type": "Array", "value": [{"type": "Number", "value": 1}]}),
        (frozenset({2}), {"type": "Array", "value": [{"type": "Number", "value": 2}]}),
        (
            MappingProxyType({1: "x"}),
            {"type": "Object", "value": {"1": {"type": "String", "value": "x"}}},
        ),
        (float("nan"), {"type": "Null"}),
        (float("inf"), {"type": "Null"}),
        (Decimal("1.5"), {"type": "String", "value": "1.5"}),
    ],
)
def test_encode_shapes(value: Any, typed: dict[str, Any]) -> None:
    assert encode(value) == typed


def test_typed_look_alike_values_survive_encoding() -> None:
    # A plain object that happens to look typed is wrapped, so it decodes back as itself.
    tricky = {"type": "String", "value": "x"}
    assert decode(encode(tricky)) == tricky
    assert decode(encode([tricky])) == [tricky]


@pytest.mark.parametrize(
    "plain",
    [
        None,
        5,
        "text",
        [1, 2],
        {"a": 1},
        {"type": "Unknown", "value": 1},
        {"type": "String", "value": "x", "extra": 1},
        {"type": "String", "other": 1},
        {"type": 5},
        {"value": 1},
    ],
)
def test_plain_json_is_accepted_as_it_is(plain: Any) -> None:
    assert not is_typed(plain)
    assert decode(plain) is plain


def test_nested_plain_values_inside_typed_containers() -> None:
    typed = {"type": "Array", "value": [1, {"k": "v"}, {"type": "Number", "value": 2}]}
    assert decode(typed) == [1, {"k": "v"}, 2]


@pytest.mark.parametrize(
    ("typed", "path", "fragment"),
    [
        ({"type": "Bool", "value": 1}, "cfg", "Bool expects true or false, got a number"),
        ({"type": "Number", "value": "1"}, "cfg", "Number expects a JSON number, got a string"),
        ({"type": "Number", "value": True}, "cfg", "got a boolean"),
        ({"type": "String", "value": None}, "cfg", "String expects a string, got null"),
        ({"type": "Bytes", "value": [256]}, "cfg", "Bytes expects an array of numbers 0..255"),
        ({"type": "Bytes", "value": [True]}, "cfg", "Bytes expects an array"),
        ({"type": "Bytes", "value": "AQ=="}, "cfg", "Bytes expects an array"),
        ({"type": "Array", "value": {}}, "cfg", "Array expects an array, got an object"),
        ({"type": "Object", "value": []}, "cfg", "Object expects an object, got an array"),
        ({"type": "Number"}, "cfg", "a Number value needs a 'value'"),
        (
            {"type": "Array", "value": [1, {"type": "Bool", "value": "no"}]},
            "cfg[1]",
            "Bool expects",
        ),
        (
            {
                "type": "Object",
                "value": {"a": {"type": "Object", "value": {"b": {"type": "Json"}}}},
            },
            "cfg.a.b",
            "a Json value needs a 'value'",
        ),
    ],
)
def test_bad_typed_values_name_their_path(typed: Any, path: str, fragment: str) -> None:
    with pytest.raises(TypedValueError) as info:
        decode(typed, "cfg")
    assert info.value.path == path
    assert fragment in info.value.message
    assert str(info.value) == f"{path}: {info.value.message}"
    assert isinstance(info.value, ValueError)


def test_error_without_path() -> None:
    with pytest.raises(TypedValueError) as info:
        decode({"type": "Bool", "value": None})
    assert str(info.value) == "Bool expects true or false, got null"
    with pytest.raises(TypedValueError) as nested:
        decode({"type": "Object", "value": {"k": {"type": "Bool", "value": 1}}})
    assert nested.value.path == "k"


@pytest.mark.parametrize(
    ("value", "plain"),
    [
        (None, None),
        (True, True),
        (3, 3),
        (2.5, 2.5),
        (math.inf, None),
        (math.nan, None),
        ("s", "s"),
        (b"\x00\x01", "AAE="),
        ((1, {2}), [1, [2]]),
        (MappingProxyType({1: b"\x02"}), {"1": "Ag=="}),
        (Decimal("2"), "2"),
    ],
)
def test_to_json(value: Any, plain: Any) -> None:
    assert to_json(value) == plain
