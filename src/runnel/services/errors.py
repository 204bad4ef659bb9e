"""The errors every use case raises; each dialect maps them to its own wire format once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "Conflict",
    "Forbidden",
    "InvalidInput",
    "NotFound",
    "ProblemDetail",
    "ServiceError",
    "Unauthorized",
]


@dataclass(frozen=True, slots=True)
class ProblemDetail:
    """One thing wrong with an input; ``where`` names the field, node or edge."""

    message: str
    where: str | None = None
    code: str = "invalid"

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


class ServiceError(Exception):
    """Base of the errors a use case raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(ServiceError):
    """The resource does not exist (or the caller may not know it does)."""

    def __init__(self, kind: str, ident: str) -> None:
        super().__init__(f"{kind[:1].upper()}{kind[1:]} {ident} not found")
        self.kind = kind
        self.ident = ident


class Conflict(ServiceError):
    """The action clashes with the current state (a taken id, a finished execution)."""


class InvalidInput(ServiceError):
    """Bad input; ``problems`` lists every problem found at once."""

    def __init__(self, message: str, problems: Sequence[ProblemDetail] = ()) -> None:
        super().__init__(message)
        self.problems = tuple(problems)


class Unauthorized(ServiceError):
    """No valid credentials; the message says what is wrong with them."""


class Forbidden(ServiceError):
    """Valid credentials, but not allowed to do this."""
