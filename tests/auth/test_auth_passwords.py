"""argon2id password hashing."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from runnel.auth.passwords import (
    MAX_PASSWORD_CHARS,
    Passwords,
    hash_password,
    needs_rehash,
    verify_password,
)

#: Cheap parameters: these tests check behaviour, not strength.
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def test_hash_and_verify() -> None:
    passwords = Passwords(FAST)
    stored = passwords.hash("correct horse")
    assert stored.startswith("$argon2id$")
    assert passwords.hash("correct horse") != stored  # salted
    assert passwords.verify(stored, "correct horse")
    assert not passwords.verify(stored, "correct horsE")
    assert not passwords.verify(stored, "")


def test_no_hash_or_a_broken_one_never_verifies() -> None:
    passwords = Passwords(FAST)
    assert not passwords.verify(None, "anything")
    assert not passwords.verify(None, "runnel dummy password")
    assert not passwords.verify("not a hash", "anything")
    assert not passwords.verify("$argon2id$v=19$m=1024,t=1,p=1$broken", "anything")


def test_over_long_passwords() -> None:
    passwords = Passwords(FAST)
    with pytest.raises(ValueError, match="limited"):
        passwords.hash("x" * (MAX_PASSWORD_CHARS + 1))
    stored = passwords.hash("x" * MAX_PASSWORD_CHARS)
    assert passwords.verify(stored, "x" * MAX_PASSWORD_CHARS)
    assert not passwords.verify(stored, "x" * (MAX_PASSWORD_CHARS + 1))


def test_needs_rehash_when_parameters_change() -> None:
    cheap = Passwords(FAST).hash("pw")
    stronger = Passwords(PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1))
    assert not Passwords(FAST).needs_rehash(cheap)
    assert stronger.needs_rehash(cheap)
    assert stronger.needs_rehash("garbage")


def test_module_functions_use_the_default_parameters() -> None:
    stored = hash_password("s3cret-pass")
    assert verify_password(stored, "s3cret-pass")
    assert not verify_password(stored, "nope")
    assert not needs_rehash(stored)
    assert needs_rehash(FAST.hash("pw"))
