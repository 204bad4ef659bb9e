"""Real ``runnel serve`` gateways for the Flowork end-to-end tests: with a gateway secret
and an owner address (the owner's key is made here), or without a secret."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from e2e.harness import RunningServer, start_server
from flowork_keys import Wallet

__all__ = ["SECRET", "Gateway", "error_of", "gateway_fixture"]

SECRET = "flork_sec_e2e_0123456789abcdef"


@dataclass
class Gateway:
    server: RunningServer
    owner: Wallet
    secret: str | None

    @property
    def url(self) -> str:
        return self.server.base_url

    def client(self) -> httpx.Client:
        """No credentials: each request brings its own."""
        return httpx.Client(base_url=self.url, timeout=30)


def gateway_fixture(
    tmp_path_factory: pytest.TempPathFactory, name: str, *, secret: str | None = SECRET
) -> Iterator[Gateway]:
    """Start a gateway; yields it and checks that it stops cleanly."""
    owner = Wallet()
    env = {"RUNNEL_RATE_LIMIT_PER_SECOND": "0", "RUNNEL_OWNER_ADDRESS": owner.address}
    if secret is not None:
        env["GATEWAY_SECRET_TOKEN"] = secret
    data_dir = tmp_path_factory.mktemp(name) / "data"
    running = start_server(data_dir, env=env)
    try:
        yield Gateway(running, owner, secret)
    finally:
        code = running.stop()
        assert code == 0, running.log()


def error_of(response: httpx.Response, status: int) -> str:
    """The ``{"error": ...}`` of a response with ``status``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: Any = response.json()
    assert isinstance(body, dict) and isinstance(body["error"], str) and body["error"]
    return str(body["error"])
