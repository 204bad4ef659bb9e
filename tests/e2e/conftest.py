"""One real ``runnel serve`` for the end-to-end tests of a session (each test uses its own
workflow ids), plus a loopback zen server that ``http.request`` may reach."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

# flow8's shared fixtures (users, a loopback receiver).
from e2e.flow8 import flow8_people, receiver  # noqa: F401
from e2e.harness import RunningServer, start_server, zen_server

#: The shared server's body limit (small, so that the 413 tests send little).
MAX_BODY = 100_000


@pytest.fixture(scope="session")
def zen_url() -> Iterator[str]:
    with zen_server() as url:
        yield url


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data_dir: Path = tmp_path_factory.mktemp("e2e") / "data"
    running = start_server(
        data_dir,
        env={
            "RUNNEL_HTTP_ALLOWED_HOSTS": "127.0.0.1",
            "RUNNEL_MAX_BODY_BYTES": str(MAX_BODY),
            "RUNNEL_RATE_LIMIT_PER_SECOND": "0",
        },
    )
    try:
        yield running
    finally:
        code = running.stop()
        assert code == 0, running.log()
