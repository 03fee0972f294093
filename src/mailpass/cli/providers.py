"""``providers``: the SMTP providers mail goes out through."""

from __future__ import annotations

import os
from typing import Any

import click

from mailpass.accounts import service as accounts
from mailpass.cli.app import (
    cli,
    run_async,
    with_database,
)
from mailpass.config import Settings, load_instance_secret
from mailpass.providers import service as providers
from mailpass.providers.hooks import HOOK_KINDS, KEYED_KINDS, hook_url
from mailpass.providers.kinds import KINDS, SECURITY_MODES
from mailpass.providers.models import Provider
from mailpass.providers.secrets import SecretBox
from mailpass.storage.database import Database


@cli.group("providers")
def providers_group() -> None:
    """SMTP providers."""


@providers_group.command("add")
@click.option("--user", "email", required=True)
@click.option("--name", required=True)
@click.option("--kind", type=click.Choice(KINDS), default="smtp", show_default=True)
@click.option("--host")
@click.option("--port", type=int)
@click.option("--security", type=click.Choice(SECURITY_MODES))
@click.option("--region", help="ses: the AWS region; mailgun: us or eu.")
@click.option("--username")
@click.option(
    "--password-env",
    metavar="VAR",
    help="Name of the environment variable holding the password (never on the command line).",
)
@click.option("--from-email", help="Default sender.")
@click.option("--from-name")
@click.option("--hourly-limit", type=int)
@click.option("--daily-limit", type=int)
@click.option("--default", "make_default", is_flag=True, help="Make it the account's default.")
@click.option(
    "--track-opens/--no-track-opens",
    default=False,
    show_default=True,
    help="Add an open-tracking pixel to html mail.",
)
@click.option(
    "--track-clicks/--no-track-clicks",
    default=False,
    show_default=True,
    help="Send the links of html mail through click tracking.",
)
@run_async
async def providers_add(
    email: str,
    password_env: str | None,
    **options: Any,
) -> None:
    """Add a provider; prints its id."""
    password = None
    if password_env:
        password = os.environ.get(password_env)
        if password is None:
            raise providers.ProviderError(f"environment variable {password_env} is not set")
    new = providers.NewProvider(password=password, **options)
    settings = Settings()

    async def work(database: Database) -> Provider:
        user = await accounts.require_user(database, email)
        return await providers.add_provider(
            database, SecretBox(load_instance_secret(settings)), user, new
        )

    provider = await with_database(settings, work)
    click.echo(provider.id)


@providers_group.command("list")
@click.option("--user", "email", help="Only this account's providers.")
@run_async
async def providers_list(email: str | None) -> None:
    """One line a provider: id, account, name, kind, server, sender, limits, default."""

    async def work(database: Database) -> None:
        user_id = (await accounts.require_user(database, email)).id if email else None
        found = await providers.list_providers(database, user_id)
        owners = {u.id: u.email for u in await accounts.list_users(database)}
        for provider in found:
            click.echo(
                "\t".join(
                    [
                        str(provider.id),
                        owners.get(provider.user_id, "?"),
                        provider.name,
                        provider.kind,
                        f"{provider.host}:{provider.port}/{provider.security}",
                        provider.from_email or "-",
                        f"{provider.hourly_limit or '-'}/h {provider.daily_limit or '-'}/d",
                        "default" if provider.is_default else "",
                    ]
                ).rstrip()
            )

    await with_database(Settings(), work)


async def _provider_for(database: Database, reference: str, email: str | None) -> Any:
    user = await accounts.require_user(database, email) if email else None
    return await providers.find_provider(database, reference, user)


@providers_group.command("test")
@click.argument("reference", metavar="ID|NAME")
@click.option("--user", "email")
@run_async
async def providers_test(reference: str, email: str | None) -> None:
    """Connect, EHLO, STARTTLS or TLS, AUTH, and print the server's replies."""
    settings = Settings()

    async def work(database: Database) -> list[str]:
        provider = await _provider_for(database, reference, email)
        return await providers.test_provider(
            provider, SecretBox(load_instance_secret(settings)), settings
        )

    for line in await with_database(settings, work):
        click.echo(line)


@providers_group.command("set-default")
@click.argument("reference", metavar="ID|NAME")
@click.option("--user", "email")
@run_async
async def providers_set_default(reference: str, email: str | None) -> None:
    """Make a provider its account's default."""

    async def work(database: Database) -> None:
        provider = await _provider_for(database, reference, email)
        await providers.set_default(database, provider)

    await with_database(Settings(), work)
    click.echo(f"provider {reference} is now the default", err=True)


@providers_group.command("set-tracking")
@click.argument("reference", metavar="ID|NAME")
@click.option("--user", "email")
@click.option("--opens", type=click.Choice(["on", "off"]), help="Open tracking (pixel).")
@click.option("--clicks", type=click.Choice(["on", "off"]), help="Click tracking (links).")
@run_async
async def providers_set_tracking(
    reference: str, email: str | None, opens: str | None, clicks: str | None
) -> None:
    """Turn a provider's open and click tracking on or off (requests may still override it)."""
    if opens is None and clicks is None:
        raise click.UsageError("say --opens on|off, --clicks on|off, or both")

    async def work(database: Database) -> str:
        provider = await _provider_for(database, reference, email)
        await providers.set_tracking(
            database,
            provider,
            track_opens=None if opens is None else opens == "on",
            track_clicks=None if clicks is None else clicks == "on",
        )
        now_opens = opens or ("on" if provider.track_opens else "off")
        now_clicks = clicks or ("on" if provider.track_clicks else "off")
        return f"provider {provider.name}: open tracking {now_opens}, click tracking {now_clicks}"

    click.echo(await with_database(Settings(), work), err=True)


@providers_group.command("webhook")
@click.argument("reference", metavar="ID|NAME")
@click.option("--user", "email")
@click.option(
    "--key",
    help="sendgrid: the Event Webhook's verification key; mailgun: the webhook signing key. "
    "Read from MAILPASS_HOOK_KEY when not given.",
)
@click.option("--remove-key", is_flag=True, help="Remove the key (payloads are then refused).")
@run_async
async def providers_webhook(
    reference: str, email: str | None, key: str | None, remove_key: bool
) -> None:
    """Print the URL to give the provider for its events (bounces, complaints, deliveries);
    with --key, set the key its payloads are checked with."""
    settings = Settings()
    key = key or os.environ.get("MAILPASS_HOOK_KEY") or None
    if key and remove_key:
        raise click.UsageError("give --key or --remove-key, not both")

    async def work(database: Database) -> Provider:
        provider = await _provider_for(database, reference, email)
        if key or remove_key:
            secrets = SecretBox(load_instance_secret(settings))
            await providers.set_hook_key(database, secrets, provider, None if remove_key else key)
            provider = await providers.find_provider(database, str(provider.id))
        return provider  # type: ignore[no-any-return]

    provider = await with_database(settings, work)
    url = hook_url(settings, provider)
    if url is None:
        raise click.ClickException(
            f"provider {provider.name} is of kind {provider.kind}, which reports no events by "
            f"webhook (kinds with one: {', '.join(HOOK_KINDS)})"
        )
    click.echo(url)
    if provider.kind in KEYED_KINDS:
        state = (
            "set" if provider.hook_key_encrypted else "NOT set: payloads are refused until it is"
        )
        click.echo(f"webhook key: {state}", err=True)
