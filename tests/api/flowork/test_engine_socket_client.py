"""``runnel.client.flowork.FloworkSigner``: what it signs is what runnel verifies."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from eth_account import Account

from runnel.auth.signatures import (
    MessageFormat,
    SignedMessage,
    preset_signing_text,
    verify,
    verify_content_signature,
)
from runnel.client.flowork import FloworkSigner


def test_envelopes_verify_and_never_repeat() -> None:
    signer = FloworkSigner.generate()
    envelopes = [signer.envelope({"type": "request_settings", "n": n}) for n in range(50)]
    messages = [e["auth"]["message"] for e in envelopes]
    assert len(set(messages)) == 50
    for envelope in envelopes[:3]:
        auth = envelope["auth"]
        assert auth["address"] == signer.address
        assert auth["message"].startswith("Flowork GUI-to-Engine Authentication: ")
        verified = verify(
            SignedMessage(auth["address"], auth["message"], auth["signature"]),
            MessageFormat.ENGINE,
            time.time(),
        )
        assert verified.address == signer.address.lower()
    assert envelopes[7]["payload"] == {"type": "request_settings", "n": 7}


def test_gateway_headers_and_socket_auth_verify() -> None:
    signer = FloworkSigner(Account.create().key)
    headers = signer.api_headers()
    assert headers["X-Payload-Version"] == "2"
    api = SignedMessage(
        headers["X-User-Address"], headers["X-Signed-Message"], headers["X-Signature"]
    )
    assert verify(api, MessageFormat.API, time.time()).address == signer.address.lower()
    assert headers["X-Signed-Message"] != signer.api_headers()["X-Signed-Message"]
    socket = signer.socket_auth()["headers"]
    signed = SignedMessage(
        socket["X-User-Address"], socket["X-Signed-Message"], socket["X-Signature"]
    )
    assert socket["X-Signed-Message"].startswith(f"flowork_socket_auth|{signer.address}|")
    assert verify(signed, MessageFormat.SOCKET, time.time()).address == signer.address.lower()


def test_preset_signatures_verify() -> None:
    signer = FloworkSigner.generate()
    data = {"nodes": [{"id": "a", "config_values": {"b": 1, "a": "ü"}}], "connections": []}
    verify_content_signature(preset_signing_text(data), signer.sign_preset(data), signer.address)
    assert signer.sign_preset(data) == signer.sign(
        json.dumps({"workflow_data": data}, sort_keys=True, separators=(",", ":"))
    )


def test_the_client_imports_no_server_module() -> None:
    code = (
        "import sys, runnel.client.flowork; "
        "print(sorted(m for m in sys.modules if m.startswith('runnel.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['runnel.client', 'runnel.client.flowork']"
