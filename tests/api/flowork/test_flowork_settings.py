"""The gateway's settings: the secret from the environment or ``.env`` (its Flowork name),
the owner address, the news file."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from runnel.settings import Settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("GATEWAY_SECRET_TOKEN", "RUNNEL_GATEWAY_SECRET_TOKEN", "RUNNEL_OWNER_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_the_gateway_secret_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().gateway_secret_token is None
    monkeypatch.setenv("GATEWAY_SECRET_TOKEN", "flork_sec_env")
    settings = Settings()
    assert settings.gateway_secret_token == "flork_sec_env"
    # Never shown in a repr (logs, tracebacks).
    assert "flork_sec_env" not in repr(settings)


def test_or_from_dot_env(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "GATEWAY_SECRET_TOKEN=flork_sec_file\nRUNNEL_OWNER_ADDRESS=0x" + "AB" * 20 + "\n"
    )
    settings = Settings()
    assert settings.gateway_secret_token == "flork_sec_file"
    assert settings.owner_address == "0x" + "ab" * 20


def test_a_bad_owner_address_is_refused() -> None:
    with pytest.raises(ValidationError, match="must be an address"):
        Settings(owner_address="0x1234")
    assert Settings(owner_address="  ").owner_address is None
