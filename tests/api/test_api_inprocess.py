"""Fine-grained API behaviour on the ASGI app in this process (httpx.ASGITransport): rate
limits and ``--no-auth``, which need their own settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from runnel.api.app import create_app
from runnel.platform import Platform
from runnel.settings import Settings


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[Platform]:
    platform = await Platform.open(Settings(data_dir=tmp_path).platform_config())
    await platform.start()
    try:
        yield platform
    finally:
        await platform.stop()


def asgi_client(app: object, token: str | None = None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://runnel.test", headers=headers)


async def test_rate_limit_per_key(platform: Platform, tmp_path: Path) -> None:
    bootstrap = await platform.accounts.ensure_owner(tmp_path)
    assert bootstrap is not None
    owner = await platform.accounts.owner_principal()
    assert owner is not None
    _, other = await platform.accounts.create_api_key(owner.user_id, "other")
    settings = Settings(data_dir=tmp_path, rate_limit_per_second=0.5, rate_limit_burst=2)
    app = create_app(platform, settings)
    async with asgi_client(app, bootstrap.token) as client, asgi_client(app, other) as second:
        assert (await client.get("/api/nodes")).status_code == 200
        assert (await client.get("/api/workflows")).status_code == 200
        limited = await client.get("/api/workflows")
        assert limited.status_code == 429
        assert limited.headers["retry-after"] == "2"
        assert limited.json() == {"error": "Too many requests: retry after 2 s"}
        # Another key has its own bucket; /health is not limited.
        assert (await second.get("/api/workflows")).status_code == 200
        for _ in range(5):
            assert (await client.get("/health")).status_code == 200


async def test_no_auth_acts_as_the_owner(platform: Platform, tmp_path: Path) -> None:
    await platform.accounts.ensure_owner(tmp_path)
    owner = await platform.accounts.owner_principal()
    assert owner is not None
    app = create_app(platform, Settings(data_dir=tmp_path, no_auth=True))
    async with app.router.lifespan_context(app), asgi_client(app) as client:
        document = {"id": "open", "nodes": [{"id": "a", "node_type": "transform.set"}]}
        assert (await client.post("/api/workflows", json=document)).status_code == 200
        versions = (await client.get("/api/workflows/open/versions")).json()
        assert versions[0]["created_by"] == owner.user_id
        assert (await client.get("/metrics")).status_code == 200


async def test_auth_required_without_no_auth(platform: Platform, tmp_path: Path) -> None:
    app = create_app(platform, Settings(data_dir=tmp_path))
    async with asgi_client(app) as client:
        response = await client.get("/api/workflows")
    assert response.status_code == 401
    assert response.json()["error"].startswith("Missing API key")
