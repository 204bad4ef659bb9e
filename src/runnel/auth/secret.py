"""The instance key, and the keys derived from it for each purpose.

One secret per installation signs API tokens and encrypts stored secrets. It comes from
``RUNNEL_SECRET_KEY`` when set (every process of a multi-machine installation must share
it), else from ``<data dir>/secret.key``, created on first start from ``os.urandom``.

The master key is the UTF-8 text of either source (the file holds 64 hex characters), so
the file's content can be copied into ``RUNNEL_SECRET_KEY`` as it is. Nothing uses the
master key directly: each purpose gets its own subkey from HKDF-SHA256 (``derive_key``), so
a key used to sign tokens is never also an encryption key.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import stat
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = [
    "KEY_FILE",
    "MIN_SECRET_CHARS",
    "PURPOSE_API_KEYS",
    "PURPOSE_SECRETS",
    "PURPOSE_SESSIONS",
    "InvalidSecretKey",
    "derive_key",
    "load_or_create_instance_key",
]

log = logging.getLogger(__name__)

KEY_FILE: Final = "secret.key"
#: A shorter ``RUNNEL_SECRET_KEY`` is refused: it would be guessable.
MIN_SECRET_CHARS: Final = 32

#: Purposes for ``derive_key``; a new purpose gets a new name, never an old one.
PURPOSE_API_KEYS: Final = "api-keys"
PURPOSE_SESSIONS: Final = "sessions"
PURPOSE_SECRETS: Final = "secrets-encryption"


class InvalidSecretKey(ValueError):
    """The configured instance key (environment or file) is unusable."""


def load_or_create_instance_key(data_dir: Path, env_value: str | None) -> bytes:
    """The instance master key: ``env_value`` (``RUNNEL_SECRET_KEY``) if set and not blank,
    else the content of ``<data_dir>/secret.key``, which is created (mode 0600, 32 random
    bytes as hex) if missing. Raises ``InvalidSecretKey`` for a short or empty key."""
    if env_value is not None and env_value.strip():
        return _checked(env_value.strip(), "RUNNEL_SECRET_KEY")
    path = Path(data_dir) / KEY_FILE
    if not path.exists():
        _create_key_file(path)
    _warn_if_readable_by_others(path)
    return _checked(path.read_text(encoding="utf-8").strip(), str(path))


def derive_key(master: bytes, purpose: str, length: int = 32) -> bytes:
    """A subkey of ``master`` for ``purpose`` (HKDF-SHA256, ``info`` = ``runnel:<purpose>``).
    The same inputs always give the same key."""
    if not master:
        raise InvalidSecretKey("the master key is empty")
    if not purpose:
        raise ValueError("purpose must not be empty")
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=length,
        salt=None,
        info=f"runnel:{purpose}".encode(),
    )
    return hkdf.derive(master)


def _checked(text: str, source: str) -> bytes:
    if len(text) < MIN_SECRET_CHARS:
        raise InvalidSecretKey(
            f"{source}: the secret key must be at least {MIN_SECRET_CHARS} characters "
            "(for example the output of `openssl rand -hex 32`)"
        )
    return text.encode("utf-8")


def _create_key_file(path: Path) -> None:
    """Write a new key without ever exposing a partial file or replacing another one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(os.urandom(32).hex() + "\n")
            file.flush()
            os.fsync(file.fileno())
        # link() fails if the key appeared meanwhile (two processes starting at once):
        # then the first one's key wins and this one reads it.
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def _warn_if_readable_by_others(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("%s is readable by other users (mode %o); chmod 600 it", path, mode)
