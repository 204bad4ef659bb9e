"""``runnel keys create|list|revoke``: API keys of the data directory's runnel."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console

from runnel.cli.errors import EXIT_USAGE, UsageProblem
from runnel.cli.serve import load_settings
from runnel.services.errors import ServiceError

if TYPE_CHECKING:
    from runnel.services.accounts import AccountService, ApiKeyInfo

__all__ = ["keys_app"]

_T = TypeVar("_T")

keys_app = typer.Typer(
    name="keys",
    help="Create, list and revoke API keys (the server may be running).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="The server's data directory (default: RUNNEL_DATA_DIR)."),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _fail(problem: UsageProblem) -> NoReturn:
    err = Console(stderr=True, soft_wrap=True, highlight=False)
    err.print(f"error: {problem.headline}", markup=False)
    for line in problem.lines:
        err.print(f"  - {line}", markup=False)
    raise typer.Exit(EXIT_USAGE)


def _with_accounts(data_dir: Path | None, use: Callable[[AccountService], Awaitable[_T]]) -> _T:
    """Open the data directory's store (no worker), run ``use``, close it."""
    from runnel.platform import Platform

    config = load_settings(data_dir=data_dir).platform_config(worker=False)

    async def main() -> _T:
        platform = await Platform.open(config)
        try:
            return await use(platform.accounts)
        finally:
            await platform.stop()

    try:
        return asyncio.run(main())
    except ServiceError as exc:
        raise UsageProblem(exc.message) from None


async def _owner_id(accounts: AccountService, data_dir: Path) -> str:
    await accounts.ensure_owner(data_dir)
    owner = await accounts.owner_principal()
    if owner is None:
        raise UsageProblem("this data directory has no owner account")
    return owner.user_id


def _time(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def _key_json(key: ApiKeyInfo) -> dict[str, Any]:
    return dataclasses.asdict(key)


@keys_app.command("create")
def create_command(
    name: Annotated[str, typer.Argument(help="What the key is for.", show_default=False)],
    expires_in_days: Annotated[
        float | None, typer.Option("--expires-in-days", help="Expire after this many days.")
    ] = None,
    user: Annotated[
        str | None, typer.Option("--user", help="The user id (default: the owner).")
    ] = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Create an API key and print its token, the only time it is shown."""
    expires_at = None if expires_in_days is None else time.time() + expires_in_days * 86400

    async def create(accounts: AccountService) -> tuple[ApiKeyInfo, str]:
        settings = load_settings(data_dir=data_dir)
        user_id = user or await _owner_id(accounts, settings.data_dir)
        return await accounts.create_api_key(user_id, name, expires_at)

    try:
        key, token = _with_accounts(data_dir, create)
    except UsageProblem as problem:
        _fail(problem)
    if as_json:
        typer.echo(json.dumps({**_key_json(key), "token": token}, indent=2))
        return
    typer.echo(f"created API key {key.id} ({key.name}) for user {key.user_id}")
    typer.echo("token (shown once; send it as 'Authorization: Bearer <token>'):")
    typer.echo(token)


@keys_app.command("list")
def list_command(
    include_revoked: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """List API keys (without their tokens)."""

    async def listing(accounts: AccountService) -> list[ApiKeyInfo]:
        return await accounts.list_api_keys(None, include_revoked=include_revoked)

    try:
        keys = _with_accounts(data_dir, listing)
    except UsageProblem as problem:
        _fail(problem)
    if as_json:
        typer.echo(json.dumps([_key_json(key) for key in keys], indent=2))
        return
    if not keys:
        typer.echo("no API keys")
        return
    for key in keys:
        state = "revoked " + _time(key.revoked_at) if key.revoked else "active"
        typer.echo(
            f"{key.id}  {key.name}  {key.prefix}  user {key.user_id}  created"
            f" {_time(key.created_at)}  last used {_time(key.last_used_at)}  expires"
            f" {_time(key.expires_at)}  {state}"
        )


@keys_app.command("revoke")
def revoke_command(
    key_id: Annotated[str, typer.Argument(help="The key's id (see 'runnel keys list').")],
    data_dir: DataDir = None,
) -> None:
    """Revoke an API key: it stops working at once, also on a running server."""

    async def revoke(accounts: AccountService) -> None:
        await accounts.revoke_api_key(None, key_id)

    try:
        _with_accounts(data_dir, revoke)
    except UsageProblem as problem:
        _fail(problem)
    typer.echo(f"revoked API key {key_id}")
