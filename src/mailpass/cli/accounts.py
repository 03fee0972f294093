"""``users`` and ``keys``: accounts and their API keys."""

from __future__ import annotations

import sys

import click

from mailpass.accounts import service as accounts
from mailpass.accounts.keys import ALL_PERMISSIONS
from mailpass.cli.app import (
    cli,
    run_async,
    with_database,
)
from mailpass.clock import isoformat
from mailpass.config import Settings
from mailpass.storage.database import Database


@cli.group()
def users() -> None:
    """Accounts."""


def _read_password(from_stdin: bool) -> str | None:
    if not from_stdin:
        return None
    return sys.stdin.readline().rstrip("\r\n")


@users.command("create")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read a dashboard password from stdin.")
@run_async
async def users_create(email: str, password_stdin: bool) -> None:
    """Create an account; prints its id."""
    password = _read_password(password_stdin)
    user = await with_database(Settings(), lambda d: accounts.create_user(d, email, password))
    click.echo(user.id)


@users.command("set-password")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, required=True)
@run_async
async def users_set_password(email: str, password_stdin: bool) -> None:
    """Set an account's dashboard password, read from stdin."""
    password = _read_password(password_stdin) or ""
    await with_database(Settings(), lambda d: accounts.set_password(d, email, password))
    click.echo("password set", err=True)


@cli.group()
def keys() -> None:
    """API keys."""


@keys.command("create")
@click.option("--user", "email", required=True, help="The account's e-mail.")
@click.option("--name", default="default", show_default=True)
@click.option(
    "--permission",
    "permissions",
    multiple=True,
    type=click.Choice(ALL_PERMISSIONS),
    help="Repeat for several; default: all.",
)
@click.option("--test", is_flag=True, help="A test key: its mail lands in the capture inbox.")
@run_async
async def keys_create(email: str, name: str, permissions: tuple[str, ...], test: bool) -> None:
    """Create an API key and print it (it is shown this once)."""

    async def work(database: Database) -> accounts.CreatedKey:
        user = await accounts.require_user(database, email)
        return await accounts.create_key(
            database, user, name=name, permissions=list(permissions) or None, test=test
        )

    created = await with_database(Settings(), work)
    click.echo(created.key)


@keys.command("list")
@click.option("--user", "email", help="Only this account's keys.")
@run_async
async def keys_list(email: str | None) -> None:
    """One line a key: id, name, prefix, permissions, last use, state."""

    async def work(database: Database) -> None:
        user_id = (await accounts.require_user(database, email)).id if email else None
        found = await accounts.list_keys(database, user_id)
        for key in found:
            state = "revoked" if key.revoked_at else ("test" if key.is_test else "live")
            click.echo(
                "\t".join(
                    [
                        str(key.id),
                        key.name,
                        key.prefix,
                        ",".join(sorted(key.permissions)),
                        isoformat(key.last_used_at) or "never",
                        state,
                    ]
                )
            )

    await with_database(Settings(), work)


@keys.command("revoke")
@click.argument("key_id", type=int)
@run_async
async def keys_revoke(key_id: int) -> None:
    """Revoke a key: it is refused from the next request on."""
    await with_database(Settings(), lambda d: accounts.revoke_key(d, key_id))
    click.echo(f"key {key_id} revoked", err=True)
