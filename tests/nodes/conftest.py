"""Fixtures of the node tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .local_http import LocalServer, start_server, stop_server


@pytest.fixture(scope="session")
def local_server() -> Iterator[LocalServer]:
    """A real HTTP server on 127.0.0.1 (routes in ``local_http``)."""
    info, server, thread = start_server()
    try:
        yield info
    finally:
        stop_server(server, thread)
