"""Credentials, as pure logic (no web framework, no database): the instance key and its
derived keys, API tokens, password hashing, rate limiting.

``runnel.services`` combines these with the store (a token's key id is checked against the
stored keys on every request); ``runnel.api`` only reads credentials off requests.
"""

from __future__ import annotations

from runnel.auth.passwords import Passwords, hash_password, needs_rehash, verify_password
from runnel.auth.ratelimit import RateDecision, RateLimiter
from runnel.auth.secret import (
    PURPOSE_API_KEYS,
    PURPOSE_SECRETS,
    PURPOSE_SESSIONS,
    InvalidSecretKey,
    derive_key,
    load_or_create_instance_key,
)
from runnel.auth.tokens import (
    InvalidToken,
    TokenClaims,
    TokenProblem,
    digests_match,
    issue_token,
    token_digest,
    token_hint,
    verify_token,
)

__all__ = [
    "PURPOSE_API_KEYS",
    "PURPOSE_SECRETS",
    "PURPOSE_SESSIONS",
    "InvalidSecretKey",
    "InvalidToken",
    "Passwords",
    "RateDecision",
    "RateLimiter",
    "TokenClaims",
    "TokenProblem",
    "derive_key",
    "digests_match",
    "hash_password",
    "issue_token",
    "load_or_create_instance_key",
    "needs_rehash",
    "token_digest",
    "token_hint",
    "verify_password",
    "verify_token",
]
