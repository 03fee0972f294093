"""The ``mailpass`` command. Standard output carries only the value asked for, so scripts can
capture it; messages for people go to standard error."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TextIO, TypeVar

import click

from mailpass import __version__
from mailpass.accounts import service as accounts
from mailpass.accounts.keys import ALL_PERMISSIONS
from mailpass.clock import isoformat
from mailpass.config import Settings, load_instance_secret
from mailpass.providers import service as providers
from mailpass.providers.kinds import KINDS, SECURITY_MODES
from mailpass.providers.models import Provider
from mailpass.providers.secrets import SecretBox
from mailpass.providers.smtp import ProbeError
from mailpass.storage.database import Database, DatabaseUrlError
from mailpass.storage.migrate import upgrade, upgrade_url

__all__ = ["main"]

P = ParamSpec("P")
T = TypeVar("T")

log = logging.getLogger("mailpass")
# A port to listen on: a port has 16 bits, and `serve --port 80000` listened on 14464 unchecked.
LISTEN_PORT = click.IntRange(1, 65535)


def run_async(function: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, T]:
    """Run an async command body, turning the errors we expect into one-line messages."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return asyncio.run(function(*args, **kwargs))
        except (
            accounts.AccountError,
            providers.ProviderError,
            ProbeError,
            DatabaseUrlError,
            ValueError,
        ) as exc:
            raise click.ClickException(str(exc)) from None
        except OSError as exc:
            raise click.ClickException(f"cannot reach the database: {exc}") from None

    return wrapper


def run_fast(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run on uvloop when it is installed (it is, with uvicorn[standard]): the queue worker's
    time goes into the event loop's socket handling, which uvloop does in C."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


async def open_database(settings: Settings) -> Database:
    database = Database(settings.resolved_database_url)
    await upgrade(database)
    return database


async def with_database(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    database = await open_database(settings)
    try:
        return await work(database)
    finally:
        await database.dispose()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mailpass")
def cli() -> None:
    """MailPass: a self-hosted transactional e-mail API in front of your own SMTP provider."""


# ---------------------------------------------------------------------------------- servers


def _configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Migrations that ran are worth a line at most; alembic narrates every step at INFO.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd, in `mailpass dev`


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=LISTEN_PORT)
@click.option("--access-log/--no-access-log", default=False, show_default=True)
@click.option(
    "--worker/--no-worker",
    default=True,
    show_default=True,
    help="Run the queue worker in this process too.",
)
@click.option(
    "--processes",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Server processes on the one port; one per CPU core uses the whole machine.",
)
def serve(host: str, port: int, access_log: bool, worker: bool, processes: int) -> None:
    """Run the API and, unless --no-worker, the queue worker (migrations are applied first)."""
    from mailpass.server import run_server

    settings = Settings()
    _configure_logging(settings)
    run_server(
        settings,
        host=host,
        port=port,
        access_log=access_log,
        worker=worker,
        processes=processes,
    )


@cli.command()
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    help="Messages sent at once (default: MAILPASS_WORKER_CONCURRENCY).",
)
@click.option(
    "--processes",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Worker processes, each sending --concurrency at once; one per CPU core uses the "
    "whole machine.",
)
def worker(concurrency: int | None, processes: int) -> None:
    """Run a queue worker until SIGTERM or Ctrl-C; any number may run, on any machine."""
    settings = Settings()
    _configure_logging(settings)
    try:
        if processes == 1:
            run_fast(_run_worker(settings, concurrency, until_idle=False))
        else:
            _supervise_workers(settings, concurrency, processes)
    except (DatabaseUrlError, OSError) as exc:
        raise click.ClickException(str(exc)) from None


def _supervise_workers(settings: Settings, concurrency: int | None, processes: int) -> None:
    # Imported here: mailpass.server brings the web app (~0.5 s), which one worker never needs.
    from mailpass.runtime.supervisor import ServerStartFailed, supervise

    asyncio.run(upgrade_url(settings.resolved_database_url))  # once, before any starts
    try:
        supervise(processes, _worker_process, (concurrency,))
    except ServerStartFailed as exc:
        raise click.ClickException(str(exc)) from None


def _worker_process(concurrency: int | None) -> None:
    """One process of ``worker --processes`` (spawned by the supervisor)."""
    settings = Settings()
    _configure_logging(settings)
    run_fast(_run_worker(settings, concurrency, until_idle=False, migrate=False))


@cli.group()
def queue() -> None:
    """The batch queue."""


@queue.command("run")
@click.option("--concurrency", type=click.IntRange(min=1))
def queue_run(concurrency: int | None) -> None:
    """Send what is due now, then exit 0 (for a crontab)."""
    settings = Settings()
    _configure_logging(settings)
    try:
        run_fast(_run_worker(settings, concurrency, until_idle=True))
    except (DatabaseUrlError, OSError) as exc:
        raise click.ClickException(str(exc)) from None


async def _run_worker(
    settings: Settings, concurrency: int | None, *, until_idle: bool, migrate: bool = True
) -> None:
    from mailpass.runtime.heap import freeze_startup_heap
    from mailpass.services import Services

    services = Services.build(settings)
    try:
        if migrate:
            await upgrade(services.database)
        queue_worker = services.worker(concurrency)
        freeze_startup_heap()
        loop = asyncio.get_running_loop()
        for signal_number in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signal_number, queue_worker.stop)
        await queue_worker.run(until_idle=until_idle)
        click.echo(
            f"queue worker stopped: {queue_worker.sent} sent, {queue_worker.failed} failed, "
            f"{queue_worker.retried} to retry",
            err=True,
        )
    finally:
        await services.close()


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=LISTEN_PORT)
@click.option(
    "--smtp-port",
    default=2525,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port of the built-in capture inbox (0: any free port).",
)
def dev(host: str, port: int, smtp_port: int) -> None:
    """A first-run sandbox: server, a capture inbox as default provider, and a ready API key."""
    from mailpass.dev import run_dev

    settings = Settings()
    _configure_logging(settings)
    try:
        asyncio.run(run_dev(settings, host=host, port=port, smtp_port=smtp_port))
    except OSError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        pass


@cli.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@run_async
async def db_upgrade() -> None:
    """Apply every pending migration."""
    await upgrade_url(Settings().resolved_database_url)
    click.echo("database is up to date", err=True)


# ---------------------------------------------------------------------------------- users


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


# ---------------------------------------------------------------------------------- keys


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


# ---------------------------------------------------------------------------------- providers


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


# ---------------------------------------------------------------------------------- sending


@cli.command("send")
@click.option("--to", "to", multiple=True, required=True, help="A recipient; repeat for more.")
@click.option("--subject", required=True)
@click.option("--text", help="Plain-text body.")
@click.option("--html", help="HTML body.")
@click.option(
    "--html-file",
    type=click.File("r", encoding="utf-8"),
    help="Read the HTML body from a file ('-': standard input).",
)
@click.option("--from", "from_email", help="Sender (default: the provider's sender).")
@click.option("--idempotency-key", help="Makes running the same command again safe.")
def send(
    to: tuple[str, ...],
    subject: str,
    text: str | None,
    html: str | None,
    html_file: TextIO | None,
    from_email: str | None,
    idempotency_key: str | None,
) -> None:
    """Send one message through a MailPass server and print its message id.

    Uses the Python SDK against $MAILPASS_API_URL (default http://127.0.0.1:8000) with the API
    key in $MAILPASS_API_KEY.
    """
    from mailpass.client import Client, MailPassError, ValidationError

    if html is not None and html_file is not None:
        raise click.UsageError("give --html or --html-file, not both")
    if html_file is not None:
        html = html_file.read()
    if not html and not text:
        raise click.UsageError("give a body: --text, --html or --html-file")
    try:
        with Client() as client:
            sent = client.mail.send(
                to=list(to) if len(to) > 1 else to[0],
                subject=subject,
                html=html,
                text=text,
                from_email=from_email,
                idempotency_key=idempotency_key,
            )
    except ValidationError as exc:
        for detail in exc.details:
            click.echo(f"  {detail.get('field')}: {detail.get('message')}", err=True)
        raise click.ClickException(str(exc)) from None
    except MailPassError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(sent.message_id)


def main() -> None:
    try:
        cli(standalone_mode=True)
    except Exception as exc:  # never a traceback for a user; MAILPASS_DEBUG=1 shows it
        if os.environ.get("MAILPASS_DEBUG"):
            raise
        click.echo(f"Error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(1)
