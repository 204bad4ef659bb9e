"""Flowork's crypto signatures: EIP-191 ``personal_sign`` over text, verified with
eth-account (which uses coincurve when it is installed).

Three signed-message formats (PROTOCOLS.md, "Crypto signature"):

- ``API``: ``flowork_api_auth|{address}|{unix_seconds}``, the gateway's REST headers;
- ``SOCKET``: ``flowork_socket_auth|{address}|{unix_seconds}``, the GUI Socket.IO connect;
- ``ENGINE``: ``Flowork GUI-to-Engine Authentication: {unix_milliseconds}``, every message
  of the Core Engine WebSocket.

``verify`` checks the shape of the three values, that the embedded time is within
``WINDOW_SECONDS`` of now, that the message names the claimed address (the formats that
carry one), and last, as it is the costly step, that the signature recovers to that address.
It does not know whether the message was seen before: the seen-set lives in the store, so
``runnel.services.identities`` adds that check (``VerifiedSignature.replay_digest``).

One rule for times, in every format: a number of 10^11 or more is milliseconds, anything
smaller is seconds (10^11 seconds is the year 5138, 10^11 ms is 1973). So a client may sign
``flowork_api_auth`` with milliseconds, which lets it make more than one request a second
with distinct messages.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from eth_account import Account
from eth_account.messages import encode_defunct

__all__ = [
    "WINDOW_SECONDS",
    "InvalidSignature",
    "MessageFormat",
    "SignatureProblem",
    "SignedMessage",
    "VerifiedSignature",
    "is_address",
    "message_for",
    "normalize_address",
    "preset_signing_text",
    "recover_address",
    "verify",
    "verify_content_signature",
]

#: How far (either way) a signed time may be from now.
WINDOW_SECONDS: Final = 300
#: Longer messages are refused unread (every format is short).
MAX_MESSAGE_CHARS: Final = 256
#: A time at or above this is milliseconds (see the module docstring).
_MILLISECONDS_FROM: Final = 10**11

_ADDRESS: Final = re.compile(r"0x[0-9a-fA-F]{40}")
# 65 bytes (r, s, v) in hex; the 0x prefix is optional, as libraries differ.
_SIGNATURE: Final = re.compile(r"(?:0x)?[0-9a-fA-F]{130}")
_TIME: Final = re.compile(r"[0-9]{1,16}")
# The order of secp256k1. For each valid (r, s) the pair (r, n - s) also verifies; only the
# lower s is accepted (as Ethereum does since EIP-2, and as every signing library makes),
# so that one signed message has exactly one signature and cannot be replayed in disguise.
_CURVE_ORDER: Final = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


class MessageFormat(StrEnum):
    """What was signed, and where."""

    API = "flowork_api_auth"
    SOCKET = "flowork_socket_auth"
    ENGINE = "Flowork GUI-to-Engine Authentication: "

    @property
    def template(self) -> str:
        """The format in words, for error messages."""
        if self is MessageFormat.ENGINE:
            return f"{self.value}<unix milliseconds>"
        return f"{self.value}|<address>|<unix seconds>"


class SignatureProblem(StrEnum):
    """Why a signed message was refused."""

    MISSING = "missing"
    MALFORMED_ADDRESS = "malformed address"
    MALFORMED_MESSAGE = "malformed message"
    MALFORMED_SIGNATURE = "malformed signature"
    ADDRESS_MISMATCH = "address mismatch"
    WRONG_SIGNER = "wrong signer"
    STALE = "stale"
    REPLAYED = "replayed"


class InvalidSignature(Exception):
    """A signed message cannot be accepted; ``problem`` says why, ``str()`` in words."""

    def __init__(self, problem: SignatureProblem, message: str) -> None:
        super().__init__(message)
        self.problem = problem
        self.message = message


@dataclass(frozen=True, slots=True)
class SignedMessage:
    """The three values a client sends, as it sent them."""

    address: str
    message: str
    signature: str


@dataclass(frozen=True, slots=True)
class VerifiedSignature:
    """A signature that recovers to ``address`` (lower-case) over a message signed at
    ``signed_at`` (unix seconds)."""

    address: str
    message: str
    signature: str
    signed_at: float

    @property
    def replay_digest(self) -> str:
        """What the seen-set keeps: the SHA-256 of (address, message, signature). Only r and
        s of the signature count: v follows from them and the address, and a client may
        spell it 0/1 or 27/28."""
        material = "\n".join((self.address, self.message, self.signature[2:130]))
        return hashlib.sha256(material.encode("utf-8")).hexdigest()

    @property
    def expires_at(self) -> float:
        """After this the message fails the time window, so the seen-set may forget it."""
        return self.signed_at + WINDOW_SECONDS


def is_address(value: object) -> bool:
    """Whether ``value`` is an Ethereum address (``0x`` and 40 hex digits, any case)."""
    return isinstance(value, str) and _ADDRESS.fullmatch(value.strip()) is not None


def normalize_address(value: object) -> str:
    """``value`` as the one form runnel stores: lower-case ``0x`` hex. ``InvalidSignature``
    (``MALFORMED_ADDRESS``) if it is not an address."""
    if not is_address(value):
        raise InvalidSignature(
            SignatureProblem.MALFORMED_ADDRESS,
            "Malformed address: expected 0x and 40 hex characters",
        )
    assert isinstance(value, str)
    return value.strip().lower()


def message_for(form: MessageFormat, address: str, unix_time: float) -> str:
    """The text a client signs in ``form`` at ``unix_time`` (seconds), as the original
    clients write it (the address as given, seconds or milliseconds per format)."""
    if form is MessageFormat.ENGINE:
        return f"{form.value}{int(unix_time * 1000)}"
    return f"{form.value}|{address}|{int(unix_time)}"


def recover_address(message: str, signature: str) -> str:
    """The lower-case address that signed ``message`` (EIP-191 personal_sign).
    ``InvalidSignature`` (``MALFORMED_SIGNATURE``) when no address can be recovered."""
    raw = _signature_bytes(signature)
    try:
        recovered = Account.recover_message(encode_defunct(text=message), signature=raw)
    except Exception:  # eth-account raises several types for a bad r, s or v
        raise InvalidSignature(
            SignatureProblem.MALFORMED_SIGNATURE,
            "Malformed signature: no address can be recovered from it",
        ) from None
    return str(recovered).lower()


def verify(
    signed: SignedMessage,
    form: MessageFormat,
    now: float,
    *,
    window: float = WINDOW_SECONDS,
) -> VerifiedSignature:
    """Check ``signed`` as a message of ``form`` at ``now`` (unix seconds); returns what
    it proves. Raises ``InvalidSignature`` with the first problem found."""
    if not signed.address or not signed.message or not signed.signature:
        raise InvalidSignature(SignatureProblem.MISSING, "Missing signature")
    address = normalize_address(signed.address)
    message = signed.message
    signature = signed.signature.strip()
    signed_at = _signed_time(form, message, address)
    if abs(now - signed_at) > window:
        raise InvalidSignature(
            SignatureProblem.STALE,
            f"Stale authentication signature: signed {abs(now - signed_at):.0f} s "
            f"{'ago' if signed_at <= now else 'ahead'} (the limit is {window:.0f} s)",
        )
    if recover_address(message, signature) != address:
        raise InvalidSignature(
            SignatureProblem.WRONG_SIGNER,
            f"Invalid signature: it was not made by {address}",
        )
    canonical = "0x" + _signature_bytes(signature).hex()
    return VerifiedSignature(address, message, canonical, signed_at)


def preset_signing_text(workflow_data: Any) -> str:
    """What a user signs to save a preset: the compact, key-sorted JSON of
    ``{"workflow_data": workflow_data}`` (Python's ``json.dumps`` spelling)."""
    return json.dumps({"workflow_data": workflow_data}, sort_keys=True, separators=(",", ":"))


def verify_content_signature(text: str, signature: str, address: str) -> None:
    """Check that ``signature`` over ``text`` was made by ``address`` (no time window:
    it signs content, not a request). Raises ``InvalidSignature``."""
    if not signature:
        raise InvalidSignature(SignatureProblem.MISSING, "Missing signature")
    if recover_address(text, signature.strip()) != normalize_address(address):
        raise InvalidSignature(
            SignatureProblem.WRONG_SIGNER,
            f"Invalid signature: it was not made by {normalize_address(address)}",
        )


def _signature_bytes(signature: str) -> bytes:
    """The 65 bytes (r, s, v) of a hex signature with a low s; ``InvalidSignature``
    otherwise."""
    if not _SIGNATURE.fullmatch(signature):
        raise InvalidSignature(
            SignatureProblem.MALFORMED_SIGNATURE,
            "Malformed signature: expected 0x and 130 hex characters",
        )
    raw = bytes.fromhex(signature[2:] if signature[:2].lower() == "0x" else signature)
    if int.from_bytes(raw[32:64], "big") > _CURVE_ORDER // 2:
        raise InvalidSignature(
            SignatureProblem.MALFORMED_SIGNATURE,
            "Malformed signature: its s value is not in the lower half (not canonical)",
        )
    return raw


def _signed_time(form: MessageFormat, message: str, address: str) -> float:
    """The time embedded in ``message`` (unix seconds); checks the message's shape and,
    for the formats that name one, that it names ``address``."""
    malformed = InvalidSignature(
        SignatureProblem.MALFORMED_MESSAGE,
        f"Malformed signed message: expected '{form.template}'",
    )
    if len(message) > MAX_MESSAGE_CHARS:
        raise malformed
    if form is MessageFormat.ENGINE:
        if not message.startswith(form.value):
            raise malformed
        stamp = message[len(form.value) :]
    else:
        parts = message.split("|")
        if len(parts) != 3 or parts[0] != form.value:
            raise malformed
        named, stamp = parts[1], parts[2]
        if not is_address(named):
            raise malformed
        if named.strip().lower() != address:
            raise InvalidSignature(
                SignatureProblem.ADDRESS_MISMATCH,
                "The signed message names another address than the one claimed",
            )
    if not _TIME.fullmatch(stamp):
        raise malformed
    value = int(stamp)
    return value / 1000.0 if value >= _MILLISECONDS_FROM else float(value)
