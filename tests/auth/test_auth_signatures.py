"""Flowork signatures with real keys: every message format, every reason to refuse one."""

from __future__ import annotations

import pytest

from flowork_keys import Wallet, preset_signature
from runnel.auth.signatures import (
    WINDOW_SECONDS,
    InvalidSignature,
    MessageFormat,
    SignatureProblem,
    SignedMessage,
    is_address,
    message_for,
    normalize_address,
    preset_signing_text,
    recover_address,
    verify,
    verify_content_signature,
)

NOW = 1_700_000_000.0
# secp256k1's order: n - s is the other signature of the same (r, message).
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


@pytest.fixture(scope="module")
def wallet() -> Wallet:
    return Wallet()


def signed(wallet: Wallet, message: str, address: str | None = None) -> SignedMessage:
    return SignedMessage(address or wallet.address, message, wallet.sign(message))


def refused(
    message: SignedMessage, form: MessageFormat = MessageFormat.API, now: float = NOW
) -> InvalidSignature:
    with pytest.raises(InvalidSignature) as caught:
        verify(message, form, now)
    return caught.value


def test_a_gateway_message_verifies(wallet: Wallet) -> None:
    message = message_for(MessageFormat.API, wallet.address, NOW)
    assert message == f"flowork_api_auth|{wallet.address}|{int(NOW)}"
    verified = verify(signed(wallet, message), MessageFormat.API, NOW + 10)
    assert verified.address == wallet.lower
    assert verified.signed_at == NOW
    assert verified.expires_at == NOW + WINDOW_SECONDS
    # The address may come in any case, the signature with or without 0x.
    plain = SignedMessage(wallet.lower, message, wallet.sign(message)[2:].upper())
    assert verify(plain, MessageFormat.API, NOW).replay_digest == verified.replay_digest


def test_the_socket_and_engine_formats(wallet: Wallet) -> None:
    socket = message_for(MessageFormat.SOCKET, wallet.address, NOW)
    assert socket.startswith("flowork_socket_auth|")
    assert verify(signed(wallet, socket), MessageFormat.SOCKET, NOW).address == wallet.lower
    engine = message_for(MessageFormat.ENGINE, wallet.address, NOW)
    assert engine == f"Flowork GUI-to-Engine Authentication: {int(NOW * 1000)}"
    assert verify(signed(wallet, engine), MessageFormat.ENGINE, NOW).signed_at == NOW
    # Each format is refused where another is expected.
    assert refused(signed(wallet, socket)).problem is SignatureProblem.MALFORMED_MESSAGE
    assert (
        refused(signed(wallet, engine), MessageFormat.SOCKET).problem
        is SignatureProblem.MALFORMED_MESSAGE
    )


def test_milliseconds_count_as_milliseconds(wallet: Wallet) -> None:
    message = f"flowork_api_auth|{wallet.address}|{int(NOW * 1000) + 250}"
    assert verify(signed(wallet, message), MessageFormat.API, NOW).signed_at == NOW + 0.25
    seconds = f"Flowork GUI-to-Engine Authentication: {int(NOW)}"
    assert verify(signed(wallet, seconds), MessageFormat.ENGINE, NOW).signed_at == NOW


@pytest.mark.parametrize("offset", [-WINDOW_SECONDS - 1, WINDOW_SECONDS + 1, -86_400])
def test_stale_messages_are_refused(wallet: Wallet, offset: float) -> None:
    message = message_for(MessageFormat.API, wallet.address, NOW + offset)
    error = refused(signed(wallet, message))
    assert error.problem is SignatureProblem.STALE
    assert str(error).startswith("Stale authentication signature")


def test_the_window_edges_pass(wallet: Wallet) -> None:
    for offset in (-WINDOW_SECONDS, WINDOW_SECONDS):
        message = message_for(MessageFormat.API, wallet.address, NOW + offset)
        verify(signed(wallet, message), MessageFormat.API, NOW)


def test_another_signer_is_refused(wallet: Wallet) -> None:
    other = Wallet()
    message = message_for(MessageFormat.API, wallet.address, NOW)
    forged = SignedMessage(wallet.address, message, other.sign(message))
    error = refused(forged)
    assert error.problem is SignatureProblem.WRONG_SIGNER
    assert wallet.lower in str(error)


def test_a_message_for_another_address_is_refused(wallet: Wallet) -> None:
    other = Wallet()
    # Signed correctly by wallet, but naming another address than the header's.
    message = message_for(MessageFormat.API, other.address, NOW)
    assert refused(signed(wallet, message)).problem is SignatureProblem.ADDRESS_MISMATCH
    # The header claims the other address for wallet's own message.
    mine = message_for(MessageFormat.API, wallet.address, NOW)
    claimed = SignedMessage(other.address, mine, wallet.sign(mine))
    assert refused(claimed).problem is SignatureProblem.ADDRESS_MISMATCH


@pytest.mark.parametrize(
    "message",
    [
        "flowork_api_auth|{a}",
        "flowork_api_auth|{a}|now",
        "flowork_api_auth|{a}|-5",
        "flowork_api_auth|{a}|1|2",
        "other_prefix|{a}|1700000000",
        "flowork_api_auth|not-an-address|1700000000",
        "x" * 300,
        "",
    ],
)
def test_malformed_messages_are_refused(wallet: Wallet, message: str) -> None:
    text = message.format(a=wallet.address)
    problem = refused(SignedMessage(wallet.address, text, wallet.sign(text or "x"))).problem
    assert problem in {SignatureProblem.MALFORMED_MESSAGE, SignatureProblem.MISSING}


@pytest.mark.parametrize(
    "signature",
    ["0x1234", "0x" + "zz" * 65, "0x" + "00" * 65, "0x" + "ff" * 64 + "1b", "not hex"],
)
def test_malformed_signatures_are_refused(wallet: Wallet, signature: str) -> None:
    message = message_for(MessageFormat.API, wallet.address, NOW)
    error = refused(SignedMessage(wallet.address, message, signature))
    assert error.problem is SignatureProblem.MALFORMED_SIGNATURE


def test_the_high_s_twin_of_a_signature_is_refused(wallet: Wallet) -> None:
    # (r, n - s, v ^ 1) recovers to the same address: accepting it would let a captured
    # request be replayed under another spelling.
    message = message_for(MessageFormat.API, wallet.address, NOW)
    raw = bytes.fromhex(wallet.sign(message)[2:])
    s = int.from_bytes(raw[32:64], "big")
    twin = raw[:32] + (N - s).to_bytes(32, "big") + bytes([raw[64] ^ 1])
    error = refused(SignedMessage(wallet.address, message, "0x" + twin.hex()))
    assert error.problem is SignatureProblem.MALFORMED_SIGNATURE
    assert "not canonical" in str(error)


def test_v_may_be_0_or_27_and_digests_agree(wallet: Wallet) -> None:
    message = message_for(MessageFormat.API, wallet.address, NOW)
    raw = bytes.fromhex(wallet.sign(message)[2:])
    low_v = raw[:64] + bytes([raw[64] - 27])
    one = verify(SignedMessage(wallet.address, message, "0x" + raw.hex()), MessageFormat.API, NOW)
    two = verify(SignedMessage(wallet.address, message, "0x" + low_v.hex()), MessageFormat.API, NOW)
    assert one.replay_digest == two.replay_digest


def test_missing_values(wallet: Wallet) -> None:
    assert refused(SignedMessage("", "m", "s")).problem is SignatureProblem.MISSING
    assert refused(SignedMessage(wallet.address, "m", "")).problem is SignatureProblem.MISSING
    error = refused(SignedMessage("0x123", "m", "s"))
    assert error.problem is SignatureProblem.MALFORMED_ADDRESS


def test_addresses() -> None:
    address = "0x" + "aB" * 20
    assert is_address(address) and is_address(f" {address} ")
    assert not is_address("0x" + "a" * 39) and not is_address(None) and not is_address(42)
    assert normalize_address(address) == address.lower()
    with pytest.raises(InvalidSignature):
        normalize_address("0xnope")


def test_recover_address(wallet: Wallet) -> None:
    assert recover_address("hello", wallet.sign("hello")) == wallet.lower


def test_preset_signatures(wallet: Wallet) -> None:
    data = {"nodes": [{"id": "a", "x": 1}], "connections": []}
    text = preset_signing_text(data)
    assert text == '{"workflow_data":{"connections":[],"nodes":[{"id":"a","x":1}]}}'
    verify_content_signature(text, preset_signature(wallet, data), wallet.address)
    with pytest.raises(InvalidSignature) as caught:
        verify_content_signature(text, preset_signature(Wallet(), data), wallet.address)
    assert caught.value.problem is SignatureProblem.WRONG_SIGNER
    with pytest.raises(InvalidSignature):
        verify_content_signature(text, "", wallet.address)
