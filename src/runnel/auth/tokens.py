"""API keys as signed tokens in compact JWT form (JWS, HS256), made with the stdlib.

A token is ``base64url(header).base64url(payload).base64url(signature)`` with header
``{"alg":"HS256","typ":"JWT"}`` (so every token starts with ``eyJ``) and payload
``{"jti": key id, "sub": user id, "iat": issued, "exp"?: expiry, "scope"?: scope}``; the
signature is HMAC-SHA256 under the instance's token subkey
(``derive_key(master, PURPOSE_API_KEYS)``).

The signature only proves that this instance issued the token. Whether the key still
counts (not revoked) is the store's answer: it keeps the key id and the SHA-256 of the
token (``token_digest``), never the token, and the caller compares the digests in constant
time (``digests_match``).

``verify_token`` accepts nothing but what ``issue_token`` makes: exactly HS256 (``none``
and every other algorithm are refused before the signature is looked at), canonical
unpadded base64url, JSON objects with the claims of the right types.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

__all__ = [
    "MAX_TOKEN_CHARS",
    "InvalidToken",
    "TokenClaims",
    "TokenProblem",
    "digests_match",
    "issue_token",
    "token_digest",
    "token_hint",
    "verify_token",
]

#: Longer bearer strings are refused unread.
MAX_TOKEN_CHARS: Final = 4096

_HEADER: Final = {"alg": "HS256", "typ": "JWT"}
_BASE64URL: Final = re.compile(r"[A-Za-z0-9_-]+")


class TokenProblem(StrEnum):
    """Why a token was refused."""

    MALFORMED = "malformed"
    UNSUPPORTED_ALGORITHM = "unsupported algorithm"
    BAD_SIGNATURE = "bad signature"
    EXPIRED = "expired"


class InvalidToken(Exception):
    """The token cannot be accepted; ``problem`` says why, ``str()`` says it in words."""

    def __init__(self, problem: TokenProblem, detail: str = "") -> None:
        super().__init__(f"{problem.value}: {detail}" if detail else problem.value)
        self.problem = problem
        self.detail = detail

    @property
    def reason(self) -> str:
        return str(self)


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What a valid token says. Times are unix seconds."""

    key_id: str
    user_id: str
    issued_at: int
    expires_at: int | None = None
    scope: str | None = None


def issue_token(
    signing_key: bytes,
    key_id: str,
    user_id: str,
    issued_at: float,
    expires_at: float | None = None,
    scope: str | None = None,
) -> str:
    """A signed token for API key ``key_id`` of ``user_id``. JWT times are whole seconds:
    ``issued_at`` is rounded down and ``expires_at`` up."""
    if not signing_key:
        raise ValueError("the signing key is empty")
    if not key_id or not user_id:
        raise ValueError("key_id and user_id must not be empty")
    payload: dict[str, Any] = {"jti": key_id, "sub": user_id, "iat": int(issued_at)}
    if expires_at is not None:
        payload["exp"] = math.ceil(expires_at)
    if scope is not None:
        payload["scope"] = scope
    signing_input = f"{_encode_json(_HEADER)}.{_encode_json(payload)}"
    return f"{signing_input}.{_b64encode(_sign(signing_key, signing_input))}"


def verify_token(signing_key: bytes, token: str, now: float) -> TokenClaims:
    """The claims of ``token`` if it is well-formed, HS256, signed with ``signing_key`` and
    not expired at ``now`` (unix seconds). Raises ``InvalidToken`` otherwise."""
    if not token or len(token) > MAX_TOKEN_CHARS:
        raise InvalidToken(TokenProblem.MALFORMED, "empty or too long")
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken(TokenProblem.MALFORMED, "not three dot-separated parts")
    header_part, payload_part, signature_part = parts
    header = _decode_json(header_part, "header")
    algorithm = header.get("alg")
    if algorithm != "HS256":
        raise InvalidToken(TokenProblem.UNSUPPORTED_ALGORITHM, f"alg {algorithm!r}")
    if header.get("typ", "JWT") != "JWT" or "crit" in header:
        raise InvalidToken(TokenProblem.MALFORMED, "unexpected header")
    signature = _b64decode(signature_part, "signature")
    expected = _sign(signing_key, f"{header_part}.{payload_part}")
    if not hmac.compare_digest(signature, expected):
        raise InvalidToken(TokenProblem.BAD_SIGNATURE)
    claims = _claims(_decode_json(payload_part, "payload"))
    if claims.expires_at is not None and now >= claims.expires_at:
        raise InvalidToken(TokenProblem.EXPIRED)
    return claims


def token_digest(token: str) -> str:
    """The hex SHA-256 of the token: what the store keeps instead of the token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def digests_match(token: str, stored_digest: str) -> bool:
    """Constant-time check that ``token`` hashes to ``stored_digest``."""
    return hmac.compare_digest(token_digest(token).encode(), stored_digest.encode())


def token_hint(token: str) -> str:
    """A short, harmless way to recognise a token in a list: its first 8 characters and its
    last 6 (every token starts alike, with the JWT header, so the end tells them apart)."""
    return f"{token[:8]}...{token[-6:]}"


# -- encoding ------------------------------------------------------------------------


def _sign(key: bytes, signing_input: str) -> bytes:
    return hmac.new(key, signing_input.encode("ascii"), hashlib.sha256).digest()


def _encode_json(value: dict[str, Any]) -> str:
    return _b64encode(json.dumps(value, separators=(",", ":")).encode("utf-8"))


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(part: str, what: str) -> bytes:
    if not _BASE64URL.fullmatch(part):
        raise InvalidToken(TokenProblem.MALFORMED, f"{what} is not base64url")
    try:
        data = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        raise InvalidToken(TokenProblem.MALFORMED, f"{what} is not base64url") from None
    # One token, one spelling: otherwise a token with other trailing bits would verify
    # but hash differently from the one issued.
    if _b64encode(data) != part:
        raise InvalidToken(TokenProblem.MALFORMED, f"{what} is not canonical base64url")
    return data


def _decode_json(part: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64decode(part, what))
    except (UnicodeDecodeError, ValueError):
        raise InvalidToken(TokenProblem.MALFORMED, f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise InvalidToken(TokenProblem.MALFORMED, f"{what} is not a JSON object")
    return value


def _claims(payload: dict[str, Any]) -> TokenClaims:
    key_id = payload.get("jti")
    user_id = payload.get("sub")
    issued_at = payload.get("iat")
    expires_at = payload.get("exp")
    scope = payload.get("scope")
    if not isinstance(key_id, str) or not key_id:
        raise InvalidToken(TokenProblem.MALFORMED, "jti missing")
    if not isinstance(user_id, str) or not user_id:
        raise InvalidToken(TokenProblem.MALFORMED, "sub missing")
    if not isinstance(issued_at, int) or isinstance(issued_at, bool):
        raise InvalidToken(TokenProblem.MALFORMED, "iat missing")
    if expires_at is not None and (not isinstance(expires_at, int) or isinstance(expires_at, bool)):
        raise InvalidToken(TokenProblem.MALFORMED, "exp is not a number")
    if scope is not None and not isinstance(scope, str):
        raise InvalidToken(TokenProblem.MALFORMED, "scope is not a string")
    return TokenClaims(key_id, user_id, issued_at, expires_at, scope)
