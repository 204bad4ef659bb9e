"""The one error the CLI turns into exit code 2 (bad usage or an invalid workflow)."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "EXIT_WAITING", "UsageProblem"]

#: The execution succeeded (or the file is valid).
EXIT_OK = 0
#: The execution failed or was cancelled.
EXIT_FAILED = 1
#: Bad usage or an invalid workflow; the reasons are on stderr.
EXIT_USAGE = 2
#: The execution stopped to wait (an approval nobody decided on the command line).
EXIT_WAITING = 3


class UsageProblem(Exception):
    """Bad usage or an invalid workflow: every line of ``lines`` goes to stderr, exit 2."""

    def __init__(self, headline: str, lines: Sequence[str] = ()) -> None:
        super().__init__(headline)
        self.headline = headline
        self.lines = tuple(lines)
