"""The Flowork API tests' gateway: ``create_served_app`` under uvicorn, with a gateway
secret, an owner address and a news file."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from api.servers import ThreadServer
from flowork_keys import Wallet
from runnel.settings import Settings

SECRET = "flork_sec_for_the_api_tests"
NEWS = [{"title": "runnel speaks Flowork", "url": "https://example.com/news/1"}]


@pytest.fixture(scope="session")
def owner() -> Wallet:
    """The key linked to the gateway's owner (RUNNEL_OWNER_ADDRESS)."""
    return Wallet()


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory, owner: Wallet) -> Iterator[ThreadServer]:
    root = tmp_path_factory.mktemp("flowork")
    news = root / "news.json"
    news.write_text(json.dumps(NEWS))
    settings = Settings(
        data_dir=root / "data",
        database_url=None,
        rate_limit_per_second=0,
        gateway_secret_token=SECRET,
        owner_address=owner.address,
        news_file=news,
    )
    server = ThreadServer(settings).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def http(gateway: ThreadServer) -> Iterator[httpx.Client]:
    """A client without credentials: each request brings its own."""
    with httpx.Client(base_url=gateway.base_url, timeout=30) as client:
        yield client
