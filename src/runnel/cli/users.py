"""``runnel users create|list``: the people who sign in (flow8's cookie sign-in and keys).

The owner made on the first start is the first admin; ``--admin`` makes more. ``--address``
gives the user a Flowork (Ethereum) address: they then sign in to the Flowork gateway with
that wallet as this account.
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from runnel.cli.admin import AsJson, DataDir, fail, format_time, with_accounts, with_platform
from runnel.cli.errors import UsageProblem

if TYPE_CHECKING:
    from runnel.platform import Platform
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
    address: Annotated[
        str | None,
        typer.Option(
            "--address",
            metavar="0x...",
            help="A Flowork (Ethereum) address: the user signs in to the gateway with it.",
        ),
    ] = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Create a user who signs in with an email and a password (and, with --address, to
    the Flowork gateway with that wallet)."""
    try:
        linked = _checked_address(address)
    except UsageProblem as problem:
        fail(problem)

    async def create(platform: Platform) -> UserInfo:
        identities = platform.flowork.identities
        if linked is not None and await identities.user_for_address(linked, create=False):
            # Checked before the user exists, so that a taken address leaves nothing behind.
            raise UsageProblem(f"the address {linked} belongs to another user")
        user = await platform.accounts.create_user(
            email, password, display_name=name, role="admin" if admin else "member"
        )
        if linked is not None:
            await identities.link_address(user.id, linked)
            user = dataclasses.replace(user, address=linked)
        return user

    try:
        user = with_platform(data_dir, create)
    except UsageProblem as problem:
        fail(problem)
    if as_json:
        typer.echo(json.dumps(_user_json(user), indent=2))
        return
    suffix = f", address {linked}" if linked is not None else ""
    typer.echo(f"created {user.role.value} {user.id} ({user.email}{suffix})")


def _checked_address(address: str | None) -> str | None:
    """The lower-case address, or a usage problem saying what is wrong with it."""
    if address is None:
        return None
    from runnel.auth.signatures import InvalidSignature, normalize_address

    try:
        return normalize_address(address)
    except InvalidSignature:
        raise UsageProblem(
            f"--address {address!r} is not an address", ["expected 0x and 40 hex characters"]
        ) from None


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
