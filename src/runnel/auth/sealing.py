"""Encrypting small values at rest with a key derived from the instance key.

``Sealer(derive_key(master, purpose))`` seals bytes with AES-256-GCM and a random 96-bit
nonce; the result is text (``v1.`` + base64url of nonce and ciphertext) fit for a ``Text``
column. ``context`` is authenticated but not stored: a sealed value opens only with the
context it was sealed with (say, the row it belongs to), so it cannot be moved to another
row of the database and still open.
"""

from __future__ import annotations

import base64
import binascii
import os
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["SealBroken", "Sealer"]

_VERSION: Final = "v1."
_NONCE_BYTES: Final = 12


class SealBroken(ValueError):
    """A sealed value does not open: another key, another context, or damaged."""


class Sealer:
    """Seals and opens values under one 32-byte key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the sealing key must be 32 bytes")
        self._aead = AESGCM(key)

    def seal(self, data: bytes, *, context: str) -> str:
        """``data`` encrypted and authenticated, bound to ``context``."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, data, context.encode("utf-8"))
        return _VERSION + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def open(self, sealed: str, *, context: str) -> bytes:
        """The data ``seal`` was given; ``SealBroken`` if it cannot be recovered."""
        if not sealed.startswith(_VERSION):
            raise SealBroken("unknown sealed-value format")
        try:
            raw = base64.urlsafe_b64decode(sealed[len(_VERSION) :].encode("ascii"))
        except (binascii.Error, ValueError, UnicodeEncodeError):
            raise SealBroken("the sealed value is not base64url") from None
        if len(raw) <= _NONCE_BYTES:
            raise SealBroken("the sealed value is too short")
        try:
            return self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context.encode())
        except InvalidTag:
            raise SealBroken("the sealed value does not open with this key and context") from None

    def seal_text(self, text: str, *, context: str) -> str:
        return self.seal(text.encode("utf-8"), context=context)

    def open_text(self, sealed: str, *, context: str) -> str:
        return self.open(sealed, context=context).decode("utf-8")
