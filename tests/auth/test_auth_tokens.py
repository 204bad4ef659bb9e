"""API tokens: issue, verify, and every way a token is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest

from runnel.auth.tokens import (
    MAX_TOKEN_CHARS,
    InvalidToken,
    TokenClaims,
    TokenProblem,
    digests_match,
    issue_token,
    token_digest,
    token_hint,
    verify_token,
)

KEY = b"k" * 32
NOW = 1_700_000_000.0


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def part(value: Any) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


def refused(token: str, problem: TokenProblem, key: bytes = KEY, now: float = NOW) -> str:
    with pytest.raises(InvalidToken) as caught:
        verify_token(key, token, now)
    assert caught.value.problem is problem
    return str(caught.value)


def test_round_trip_in_jwt_form() -> None:
    token = issue_token(KEY, "key1", "user1", NOW + 0.7, expires_at=NOW + 99.2, scope="read")
    assert token.startswith("eyJ")
    header, payload, _ = token.split(".")
    assert json.loads(base64.urlsafe_b64decode(header + "==")) == {"alg": "HS256", "typ": "JWT"}
    assert json.loads(base64.urlsafe_b64decode(payload + "==")) == {
        "jti": "key1",
        "sub": "user1",
        "iat": int(NOW),
        "exp": int(NOW) + 100,
        "scope": "read",
    }
    assert verify_token(KEY, token, NOW) == TokenClaims(
        key_id="key1", user_id="user1", issued_at=int(NOW), expires_at=int(NOW) + 100, scope="read"
    )
    plain = issue_token(KEY, "key2", "user2", NOW)
    assert verify_token(KEY, plain, NOW + 10**9) == TokenClaims("key2", "user2", int(NOW))


def test_expired() -> None:
    token = issue_token(KEY, "k", "u", NOW, expires_at=NOW + 60)
    verify_token(KEY, token, NOW + 59.9)
    assert refused(token, TokenProblem.EXPIRED, now=NOW + 60) == "expired"


def test_tampered_payload_signature_or_key() -> None:
    token = issue_token(KEY, "k", "alice", NOW)
    header, _, signature = token.split(".")
    forged = f"{header}.{part({'jti': 'k', 'sub': 'admin', 'iat': int(NOW)})}.{signature}"
    refused(forged, TokenProblem.BAD_SIGNATURE)
    other = issue_token(KEY, "k", "bob", NOW).split(".")[2]
    refused(f"{header}.{token.split('.')[1]}.{other}", TokenProblem.BAD_SIGNATURE)
    refused(token, TokenProblem.BAD_SIGNATURE, key=b"x" * 32)


@pytest.mark.parametrize("alg", ["none", "None", "HS512", "RS256", None])
def test_only_hs256_is_accepted(alg: str | None) -> None:
    payload = part({"jti": "k", "sub": "u", "iat": int(NOW)})
    header = part({"alg": alg, "typ": "JWT"} if alg is not None else {"typ": "JWT"})
    message = refused(f"{header}.{payload}.", TokenProblem.UNSUPPORTED_ALGORITHM)
    assert "unsupported algorithm" in message
    # Also with a real HS256 signature over it: the header alone decides.
    signature = issue_token(KEY, "k", "u", NOW).split(".")[2]
    refused(f"{header}.{payload}.{signature}", TokenProblem.UNSUPPORTED_ALGORITHM)


def signed(header: Any, payload: Any) -> str:
    """A token signed with KEY over arbitrary header and payload JSON."""
    signing_input = f"{part(header)}.{part(payload)}"
    signature = hmac.new(KEY, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


HS256 = {"alg": "HS256", "typ": "JWT"}


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "eyJ!.eyJ.abc",
        "x" * (MAX_TOKEN_CHARS + 1),
        f"{part(HS256)}=.{part({'jti': 'k'})}.abc",
        f"{b64(b'not json')}.{part({})}.abc",
        f"{part(['alg', 'HS256'])}.{part({})}.abc",
        signed({"alg": "HS256", "typ": "JWS"}, {"jti": "k", "sub": "u", "iat": 1}),
        signed({"alg": "HS256", "crit": ["x"]}, {"jti": "k", "sub": "u", "iat": 1}),
        signed(HS256, {"sub": "u", "iat": 1}),
        signed(HS256, {"jti": "", "sub": "u", "iat": 1}),
        signed(HS256, {"jti": "k", "sub": 5, "iat": 1}),
        signed(HS256, {"jti": "k", "sub": "u"}),
        signed(HS256, {"jti": "k", "sub": "u", "iat": True}),
        signed(HS256, {"jti": "k", "sub": "u", "iat": 1.5}),
        signed(HS256, {"jti": "k", "sub": "u", "iat": 1, "exp": "later"}),
        signed(HS256, {"jti": "k", "sub": "u", "iat": 1, "scope": ["a"]}),
        signed(HS256, ["jti", "k"]),
    ],
)
def test_malformed(token: str) -> None:
    refused(token, TokenProblem.MALFORMED)


def test_a_second_spelling_of_the_signature_is_refused() -> None:
    token = issue_token(KEY, "k", "u", NOW)
    # 32 signature bytes are 43 base64 characters; the last carries 2 unused bits, so
    # other last characters decode to the same bytes. Only the issued spelling counts.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(token[-1])
    twin = token[:-1] + alphabet[last ^ 1]
    assert base64.urlsafe_b64decode(twin.split(".")[2] + "=") == base64.urlsafe_b64decode(
        token.split(".")[2] + "="
    )
    message = refused(twin, TokenProblem.MALFORMED)
    assert "canonical" in message


def test_digest_and_hint() -> None:
    token = issue_token(KEY, "k", "u", NOW)
    digest = token_digest(token)
    assert len(digest) == 64
    assert token not in digest
    assert digests_match(token, digest)
    assert not digests_match(token + "x", digest)
    hint = token_hint(token)
    assert hint.startswith("eyJhbGci...")
    assert hint.endswith(token[-6:])
    assert len(hint) < 20


def test_issue_refuses_empty_inputs() -> None:
    with pytest.raises(ValueError, match="signing key"):
        issue_token(b"", "k", "u", NOW)
    with pytest.raises(ValueError, match="must not be empty"):
        issue_token(KEY, "", "u", NOW)
