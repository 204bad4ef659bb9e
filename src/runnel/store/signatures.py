"""The seen-set of signed messages: a Flowork signature is accepted once, by any process.

One row per accepted (address, message, signature), keyed by its digest, kept until the
message could no longer pass the time window anyway; ``prune_signatures`` drops the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Final, TypeVar

from sqlalchemy import Dialect
from sqlalchemy.engine.interfaces import DBAPICursor

from runnel.store.reading import Reader
from runnel.store.rendering import renderer

if TYPE_CHECKING:
    from sqlalchemy import Engine

__all__ = ["SignatureStatements", "SignaturesMixin"]

_T = TypeVar("_T")

REMEMBER: Final = """
INSERT INTO seen_signatures (digest, expires_at) VALUES (:digest, :expires_at)
ON CONFLICT (digest) DO NOTHING
"""
PRUNE: Final = "DELETE FROM seen_signatures WHERE expires_at < :now"


class SignatureStatements:
    def __init__(self, dialect: Dialect) -> None:
        render = renderer(dialect)
        self.remember = render(REMEMBER)
        self.prune = render(PRUNE)


class SignaturesMixin:
    """The seen-set, as methods of ``SqlStore``."""

    if TYPE_CHECKING:
        _writer_engine: Engine

        async def _call(self, function: Callable[[DBAPICursor], _T]) -> _T: ...

        async def _read(self, function: Callable[[Reader], _T]) -> _T: ...

    _signature_statements: SignatureStatements | None = None

    @property
    def _signatures_sql(self) -> SignatureStatements:
        if self._signature_statements is None:
            self._signature_statements = SignatureStatements(self._writer_engine.dialect)
        return self._signature_statements

    async def remember_signature(self, digest: str, expires_at: float) -> bool:
        """Record a signed message; False if it was recorded before (a replay)."""
        sql = self._signatures_sql.remember
        params = {"digest": digest, "expires_at": expires_at}

        def remember(cursor: DBAPICursor) -> bool:
            cursor.execute(sql, params)
            return bool(cursor.rowcount == 1)

        return await self._call(remember)

    async def prune_signatures(self, now: float) -> int:
        """Forget the messages whose window closed before ``now``; how many went."""
        sql = self._signatures_sql.prune

        def prune(cursor: DBAPICursor) -> int:
            cursor.execute(sql, {"now": now})
            return max(int(cursor.rowcount), 0)

        return await self._call(prune)
