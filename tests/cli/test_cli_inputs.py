"""``--input`` and ``--inputs-json`` parsing."""

from __future__ import annotations

import pytest

from runnel.cli.errors import UsageProblem
from runnel.cli.inputs import parse_inputs


def test_values_are_json_when_they_parse_and_text_otherwise() -> None:
    inputs = parse_inputs(
        ["n=3", "ratio=0.5", "flag=true", "none=null", 'obj={"a": [1]}', "url=https://x.test/a=b"],
        None,
    )
    assert inputs == {
        "n": 3,
        "ratio": 0.5,
        "flag": True,
        "none": None,
        "obj": {"a": [1]},
        "url": "https://x.test/a=b",
    }


def test_an_empty_value_is_an_empty_string() -> None:
    assert parse_inputs(["message="], None) == {"message": ""}


def test_inputs_json_accepts_typed_and_plain_values_and_pairs_win() -> None:
    document = (
        '{"url": {"type": "String", "value": "https://a.test"},'
        ' "raw": {"b": 1}, "n": {"type": "Number", "value": 1}}'
    )
    assert parse_inputs(["n=2"], document) == {"url": "https://a.test", "raw": {"b": 1}, "n": 2}


def test_a_typed_value_given_to_input_is_decoded() -> None:
    assert parse_inputs(['b={"type": "Bytes", "value": [104, 105]}'], None) == {"b": b"hi"}


@pytest.mark.parametrize(
    ("pairs", "document", "message"),
    [
        (["novalue"], None, "--input expects key=value"),
        (["=3"], None, "--input expects key=value"),
        ([], "{not json", "--inputs-json is not valid JSON"),
        ([], "[1, 2]", "--inputs-json must be a JSON object"),
        ([], '{"x": {"type": "Number", "value": "3"}}', "--inputs-json x: Number expects"),
    ],
)
def test_bad_inputs_are_usage_problems(
    pairs: list[str], document: str | None, message: str
) -> None:
    with pytest.raises(UsageProblem, match=message.replace("[", r"\[")):
        parse_inputs(pairs, document)
