"""``runnel users create|list``: the people who sign in (flow8's cookie sign-in and keys).

The owner made on the first start is the first admin; ``--admin`` makes more.
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from runnel.cli.admin import AsJson, DataDir, fail, format_time, with_accounts
from runnel.cli.errors import UsageProblem

if TYPE_CHECKING:
    from runnel.services.accounts import AccountService, UserInfo

__all__ = ["users_app"]

_T = TypeVar("_T")

users_app = typer.Typer(
    name="users",
    help="Create and list users (the server may be running).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _user_json(user: UserInfo) -> dict[str, Any]:
    document = dataclasses.asdict(user)
    document["role"] = user.role.value
    return document


@users_app.command("create")
def create_command(
    email: Annotated[str, typer.Option("--email", help="Signs in with this address.")],
    password: Annotated[
        str,
        typer.Option(
            "--password",
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            help="At least 8 characters (asked for when left out).",
        ),
    ],
    admin: Annotated[bool, typer.Option("--admin", help="Make the user an admin.")] = False,
    name: Annotated[str | None, typer.Option("--name", help="Display name.")] = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Create a user who signs in with an email and a password."""

    async def create(accounts: AccountService) -> UserInfo:
        return await accounts.create_user(
            email, password, display_name=name, role="admin" if admin else "member"
        )

    try:
        user = with_accounts(data_dir, create)
    except UsageProblem as problem:
        fail(problem)
    if as_json:
        typer.echo(json.dumps(_user_json(user), indent=2))
        return
    typer.echo(f"created {user.role.value} {user.id} ({user.email})")


@users_app.command("list")
def list_command(data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """List users, oldest first (the owner first)."""

    async def listing(accounts: AccountService) -> list[UserInfo]:
        return await accounts.list_users()

    try:
        users = with_accounts(data_dir, listing)
    except UsageProblem as problem:
        fail(problem)
    if as_json:
        typer.echo(json.dumps([_user_json(user) for user in users], indent=2))
        return
    for user in users:
        state = "disabled" if user.disabled else "active"
        typer.echo(
            f"{user.id}  {user.role.value:<6}  {user.email or '-'}  {user.display_name or '-'}"
            f"  created {format_time(user.created_at)}  {state}"
        )
