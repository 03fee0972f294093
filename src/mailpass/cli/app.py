"""The ``mailpass`` command group and what its commands share. Standard output carries only the
value asked for, so scripts can capture it; messages for people go to standard error."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

import click

from mailpass import __version__
from mailpass.accounts import service as accounts
from mailpass.config import Settings
from mailpass.core.addresses import allow_single_label_domains
from mailpass.providers import service as providers
from mailpass.providers.smtp import ProbeError
from mailpass.runtime.logs import configure_logging as setup_logging
from mailpass.storage.database import Database, DatabaseUrlError
from mailpass.storage.migrate import upgrade

__all__ = [
    "LISTEN_PORT",
    "cli",
    "configure_logging",
    "open_database",
    "run_async",
    "run_fast",
    "with_database",
]

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
    allow_single_label_domains(settings.allow_single_label_domains)
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


def configure_logging(settings: Settings) -> None:
    """Logging as ``MAILPASS_LOG_LEVEL`` and ``MAILPASS_LOG_FORMAT`` say (``runtime.logs``)."""
    setup_logging(settings.log_level, settings.log_format)
