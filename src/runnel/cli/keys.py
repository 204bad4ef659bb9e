"""``runnel keys create|list|revoke``: API keys of the data directory's runnel."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from runnel.cli.admin import AsJson, DataDir, fail, format_time, with_accounts
from runnel.cli.errors import UsageProblem
from runnel.cli.serve import load_settings

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


async def _owner_id(accounts: AccountService, data_dir: Path) -> str:
    await accounts.ensure_owner(data_dir)
    owner = await accounts.owner_principal()
    if owner is None:
        raise UsageProblem("this data directory has no owner account")
    return owner.user_id


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
        key, token = with_accounts(data_dir, create)
    except UsageProblem as problem:
        fail(problem)
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
        keys = with_accounts(data_dir, listing)
    except UsageProblem as problem:
        fail(problem)
    if as_json:
        typer.echo(json.dumps([_key_json(key) for key in keys], indent=2))
        return
    if not keys:
        typer.echo("no API keys")
        return
    for key in keys:
        state = "revoked " + format_time(key.revoked_at) if key.revoked else "active"
        typer.echo(
            f"{key.id}  {key.name}  {key.prefix}  user {key.user_id}  created"
            f" {format_time(key.created_at)}  last used {format_time(key.last_used_at)}  expires"
            f" {format_time(key.expires_at)}  {state}"
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
        with_accounts(data_dir, revoke)
    except UsageProblem as problem:
        fail(problem)
    typer.echo(f"revoked API key {key_id}")
