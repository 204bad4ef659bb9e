"""``runnel engine``'s usage errors, its settings, and ``runnel users create --address``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runnel.cli.engine import load_engine_settings
from runnel.cli.errors import UsageProblem
from runnel.settings import default_data_dir

Cli = Callable[..., Any]
TOKEN = "dev_engine_" + "0123456789abcdef" * 2
ADDRESS = "0x" + "Ab" * 20


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No engine settings from the environment, and no ``.env`` in the working dir."""
    for name in (
        "FLOWORK_ENGINE_ID",
        "FLOWORK_ENGINE_TOKEN",
        "FLOWORK_GATEWAY_URL",
        "GATEWAY_SECRET_TOKEN",
        "RUNNEL_ENGINE_BIND",
        "RUNNEL_ENGINE_DATA_DIR",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_without_id_and_token_it_says_what_is_missing(cli: Cli) -> None:
    result = cli("engine", "--gateway", "http://127.0.0.1:1")
    assert result.exit_code == 2
    assert "runnel engine needs the engine id and the engine token" in result.stderr
    assert "--engine-id ID or set FLOWORK_ENGINE_ID" in result.stderr
    assert "--token dev_engine_... or set FLOWORK_ENGINE_TOKEN" in result.stderr
    assert "gateway" not in result.stderr.split("needs", 1)[1].splitlines()[0]
    assert result.stdout == ""


def test_without_anything_it_names_all_three(cli: Cli) -> None:
    result = cli("engine")
    assert result.exit_code == 2
    assert "needs the engine id, the engine token and the gateway" in result.stderr
    assert "--gateway URL or set FLOWORK_GATEWAY_URL" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--token", "dev_engine_xyz"], "the engine token is malformed"),
        (["--token", TOKEN, "--bind", "nowhere"], "expected HOST:PORT"),
        (["--token", TOKEN, "--gateway", "ftp://gw"], "expected an http:// or https:// URL"),
    ],
)
def test_malformed_values_are_bad_usage(cli: Cli, args: list[str], message: str) -> None:
    base = {"--gateway": "http://127.0.0.1:1", "--engine-id": "e1"}
    merged = [part for pair in base.items() if pair[0] not in args for part in pair] + args
    result = cli("engine", *merged)
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr


def test_the_environment_and_dotenv_give_the_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text(
        f"FLOWORK_ENGINE_ID=from-dotenv\nFLOWORK_ENGINE_TOKEN={TOKEN}\n"
        "FLOWORK_GATEWAY_URL=https://gw.example.com/\nGATEWAY_SECRET_TOKEN=s3cret\n"
    )
    settings = load_engine_settings()
    assert (settings.engine_id, settings.engine_token) == ("from-dotenv", TOKEN)
    assert settings.gateway_url == "https://gw.example.com"
    assert settings.gateway_secret_token == "s3cret"
    assert settings.bind_address == "127.0.0.1:8989"
    assert settings.internal_api_url == "http://127.0.0.1:8989"
    assert settings.effective_data_dir() == default_data_dir() / "engine-from-dotenv"
    # The environment wins over .env, the command line over both.
    monkeypatch.setenv("FLOWORK_ENGINE_ID", "from-env")
    assert load_engine_settings().engine_id == "from-env"
    given = load_engine_settings(engine_id="given", bind_address="0.0.0.0:9000")
    assert given.engine_id == "given"
    assert given.internal_api_url == "http://127.0.0.1:9000"


def test_a_strange_engine_id_makes_a_safe_folder_name() -> None:
    settings = load_engine_settings(engine_id="../x y", engine_token=TOKEN, gateway_url="http://gw")
    assert settings.effective_data_dir().name == "engine-.._x_y"
    assert settings.effective_data_dir().parent == default_data_dir()


def test_a_usage_problem_lists_every_missing_value() -> None:
    with pytest.raises(UsageProblem) as caught:
        load_engine_settings(gateway_url="http://gw")
    assert len(caught.value.lines) == 2


def test_users_create_links_an_address(cli: Cli, tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    made = cli(
        "users", "create", "--email", "a@example.com", "--password", "long enough",
        "--address", ADDRESS, "--data-dir", data, "--json",
    )  # fmt: skip
    assert made.exit_code == 0, made.stderr
    assert json.loads(made.stdout)["address"] == ADDRESS.lower()
    listed = cli("users", "list", "--data-dir", data, "--json")
    assert [u["address"] for u in listed.json() if u["email"] == "a@example.com"] == [
        ADDRESS.lower()
    ]
    # The address is taken: nothing is created.
    again = cli(
        "users", "create", "--email", "b@example.com", "--password", "long enough",
        "--address", ADDRESS.upper().replace("0X", "0x"), "--data-dir", data,
    )  # fmt: skip
    assert again.exit_code == 2
    assert f"the address {ADDRESS.lower()} belongs to another user" in again.stderr
    emails = [u["email"] for u in cli("users", "list", "--data-dir", data, "--json").json()]
    assert "b@example.com" not in emails
    bad = cli(
        "users", "create", "--email", "c@example.com", "--password", "long enough",
        "--address", "0x123", "--data-dir", data,
    )  # fmt: skip
    assert bad.exit_code == 2 and "is not an address" in bad.stderr
    plain = cli(
        "users", "create", "--email", "d@example.com", "--password", "long enough",
        "--data-dir", data,
    )  # fmt: skip
    assert plain.exit_code == 0 and "address" not in plain.stdout
