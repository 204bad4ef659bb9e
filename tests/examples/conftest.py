"""Fixtures of the example tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from .zen_http import ZenHTTPServer, ZenServer


@pytest.fixture
def zen_server() -> Iterator[ZenServer]:
    """A real HTTP server on 127.0.0.1 answering ``GET /zen`` with ``ZEN``."""
    server = ZenHTTPServer()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    info = ZenServer(url=f"http://127.0.0.1:{server.server_address[1]}/zen", requests=server.seen)
    try:
        yield info
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
