"""The API tests' server: ``create_served_app`` under real uvicorn, in a thread."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from api.servers import ThreadServer
from runnel.settings import Settings

#: Small, so that the tests that overflow them send little.
MAX_BODY = 50_000
EVENTS_QUEUE = 16


@pytest.fixture(scope="session")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("api") / "data",
        database_url=None,
        max_body_bytes=MAX_BODY,
        rate_limit_per_second=0,
        events_queue_size=EVENTS_QUEUE,
        http_allowed_hosts=frozenset({"127.0.0.1"}),
        no_auth=False,
    )
    server = ThreadServer(settings).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def client(api_server: ThreadServer) -> Iterator[httpx.Client]:
    with api_server.client() as client:
        yield client
