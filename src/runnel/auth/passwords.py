"""Password hashing with argon2id (argon2-cffi).

Hashing is deliberately slow (tens of milliseconds): callers on an event loop run these
functions in a thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import contextlib
import functools
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = ["MAX_PASSWORD_CHARS", "Passwords", "hash_password", "needs_rehash", "verify_password"]

#: Longer inputs are refused before hashing, so that nobody can make the server hash
#: megabytes.
MAX_PASSWORD_CHARS: Final = 1024


class Passwords:
    """Hash and verify passwords with one set of argon2 parameters (the library's
    recommended ones by default; tests may pass cheaper ones)."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher if hasher is not None else PasswordHasher()
        # Verified when there is no stored hash (unknown user), so that "no such user"
        # takes as long as "wrong password" and does not reveal which emails exist.
        self._dummy_hash = self._hasher.hash("runnel dummy password")

    def hash(self, password: str) -> str:
        """The encoded argon2id hash of ``password`` (salted; differs each call)."""
        _check_length(password)
        return self._hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        """True if ``password`` matches ``stored_hash``. False for a mismatch, a malformed
        hash, an over-long password or no hash at all (after the same work)."""
        if len(password) > MAX_PASSWORD_CHARS:
            return False
        if stored_hash is None:
            with contextlib.suppress(VerificationError):
                self._hasher.verify(self._dummy_hash, password)
            return False
        try:
            return self._hasher.verify(stored_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        """True if ``stored_hash`` was made with other parameters than the current ones
        (rehash it at the next successful sign-in)."""
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except (InvalidHashError, ValueError):
            return True


def _check_length(password: str) -> None:
    if len(password) > MAX_PASSWORD_CHARS:
        raise ValueError(f"passwords are limited to {MAX_PASSWORD_CHARS} characters")


@functools.cache
def _passwords() -> Passwords:
    # Built on first use: its dummy hash costs one hashing, not worth paying at import.
    return Passwords()


def hash_password(password: str) -> str:
    """``Passwords().hash`` with the default parameters."""
    return _passwords().hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """``Passwords().verify`` with the default parameters."""
    return _passwords().verify(stored_hash, password)


def needs_rehash(stored_hash: str) -> bool:
    """``Passwords().needs_rehash`` with the default parameters."""
    return _passwords().needs_rehash(stored_hash)
