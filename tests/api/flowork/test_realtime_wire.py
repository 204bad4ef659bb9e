"""The gateway socket's input checks, as pure functions."""

from __future__ import annotations

import pytest

from runnel.api.flowork.realtime.wire import (
    WireError,
    engine_credentials,
    gui_credentials,
    internal_api_url,
    job_request,
    relay_request,
    vitals_message,
)
from runnel.auth.signatures import SignedMessage

ADDRESS = "0x" + "Ab" * 20
SIGNED = SignedMessage(ADDRESS, "flowork_socket_auth|x|1", "0xsig")


def test_gui_credentials_nested_flat_any_case_or_headers() -> None:
    values = {"X-User-Address": ADDRESS, "X-Signed-Message": SIGNED.message, "X-Signature": "0xsig"}
    assert gui_credentials({"headers": values}) == SIGNED
    assert gui_credentials(values) == SIGNED
    assert gui_credentials({"headers": {k.lower(): v for k, v in values.items()}}) == SIGNED
    environ = {
        "HTTP_X_USER_ADDRESS": ADDRESS,
        "HTTP_X_SIGNED_MESSAGE": SIGNED.message,
        "HTTP_X_SIGNATURE": "0xsig",
    }
    assert gui_credentials(None, environ) == SIGNED
    for bad in (None, {}, {"headers": "x"}, {**values, "X-Signature": ""}, [values]):
        with pytest.raises(WireError, match="Missing signature"):
            gui_credentials(bad, {})


def test_engine_credentials() -> None:
    assert engine_credentials({"engine_id": "e", "token": "t"}) == ("e", "t")
    for bad in (None, {"engine_id": "e"}, {"engine_id": 1, "token": "t"}, "e:t"):
        with pytest.raises(WireError, match="Missing credentials"):
            engine_credentials(bad)


def test_job_requests() -> None:
    payload = {"target_engine_id": "e", "user_context": {"user_id": "forged"}, "name": "N"}
    assert job_request("load_preset", {"v": 2, "payload": payload}) == {
        "type": "load_preset",
        "target_engine_id": "e",
        "name": "N",
    }
    typed = {"type": "load_preset", "target_engine_id": "e"}
    assert job_request("load_preset", {"v": 2, "payload": typed})["type"] == "load_preset"
    refused = [
        ("load_preset", {"payload": typed}, "expected"),
        ("load_preset", {"v": 1, "payload": typed}, "expected"),
        ("load_preset", {"v": 2, "payload": "x"}, "payload must be an object"),
        ("save_preset", {"v": 2, "payload": typed}, "payload type"),
        ("load_preset", {"v": 2, "payload": {"target_engine_id": ""}}, "target_engine_id"),
        ("auth_success", {"v": 2, "payload": typed}, "Unknown request type"),
        ("x" * 65, {"v": 2, "payload": typed}, "Unknown request type"),
    ]
    for event, data, text in refused:
        with pytest.raises(WireError, match=text):
            job_request(event, data)


def test_relay_requests() -> None:
    message = {"type": "log", "message": "hi"}
    assert relay_request({"audience": None, "message": message}) == (None, message)
    assert relay_request({"message": message}) == (None, message)
    audience, _ = relay_request({"audience": [ADDRESS], "message": message})
    assert audience == frozenset({ADDRESS.lower()})
    for bad in (
        None,
        {"message": "x"},
        {"message": {"no": "type"}},
        {"message": {"type": "t" * 65}},
        {"audience": "all", "message": message},
        {"audience": ["not an address"], "message": message},
    ):
        with pytest.raises(WireError):
            relay_request(bad)


def test_engine_reports() -> None:
    assert (
        internal_api_url({"internal_api_url": "https://e.example/api"}) == "https://e.example/api"
    )
    for bad in ({"internal_api_url": "file:///etc"}, {"internal_api_url": 3}, None, {}):
        assert internal_api_url(bad) is None
    assert internal_api_url({"internal_api_url": "http://x/" + "a" * 3000}) is None
    assert vitals_message("e1", {"engineId": "e2", "isBusy": True}) == {
        "engineId": "e1",
        "isBusy": True,
    }
    assert vitals_message("e1", "junk") == {"engineId": "e1"}
