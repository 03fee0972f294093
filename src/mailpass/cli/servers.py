"""``serve``, ``smtp``, ``worker``, ``bounces``, ``queue run``, ``dev`` and ``db upgrade``: running
MailPass."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

import click

from mailpass.cli.app import (
    LISTEN_PORT,
    cli,
    configure_logging,
    run_async,
    run_fast,
)
from mailpass.config import Settings
from mailpass.storage.database import DatabaseUrlError
from mailpass.storage.migrate import upgrade, upgrade_url

if TYPE_CHECKING:
    from mailpass.relay.server import RelayListen


def relay_options(command: Callable[..., None]) -> Callable[..., None]:
    """``--smtp-port``, ``--smtps-port`` and ``--smtp-host``: where the SMTP relay listens."""
    for option in reversed(
        (
            click.option(
                "--smtp-port",
                type=LISTEN_PORT,
                help="Take mail over SMTP on this port, with STARTTLS (587 in production).",
            ),
            click.option(
                "--smtps-port",
                type=LISTEN_PORT,
                help="Take mail over SMTP with implicit TLS on this port (465 in production).",
            ),
            click.option("--smtp-host", help="Address the SMTP ports listen on (default: --host)."),
        )
    ):
        command = option(command)
    return command


def _relay_listen(
    settings: Settings, host: str, smtp_port: int | None, smtps_port: int | None
) -> RelayListen | None:
    from mailpass.relay.server import RelayListen

    if smtp_port is None and smtps_port is None:
        return None
    if smtps_port is not None and not (settings.smtp_tls_cert and settings.smtp_tls_key):
        raise click.UsageError(
            "--smtps-port needs a certificate: set MAILPASS_SMTP_TLS_CERT and "
            "MAILPASS_SMTP_TLS_KEY (PEM files)"
        )
    for path in (settings.smtp_tls_cert, settings.smtp_tls_key):
        if path is not None and not path.is_file():
            raise click.UsageError(f"no such file: {path}")
    return RelayListen(host, smtp_port, smtps_port)


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
@click.option(
    "--bounce-smtp-port",
    type=LISTEN_PORT,
    help="Also take bounce and complaint reports by SMTP on this port (the MX of "
    "MAILPASS_BOUNCE_DOMAIN).",
)
@click.option(
    "--metrics-port",
    type=LISTEN_PORT,
    help="Serve /metrics (Prometheus's text format) on this port, for every process.",
)
@click.option(
    "--metrics-host",
    default="127.0.0.1",
    show_default=True,
    help="Address the metrics port listens on.",
)
@relay_options
def serve(
    host: str,
    port: int,
    access_log: bool,
    worker: bool,
    processes: int,
    bounce_smtp_port: int | None,
    metrics_port: int | None,
    metrics_host: str,
    smtp_port: int | None,
    smtps_port: int | None,
    smtp_host: str | None,
) -> None:
    """Run the API and, unless --no-worker, the queue worker (migrations are applied first);
    with --smtp-port or --smtps-port, the SMTP relay too."""
    from mailpass.server import run_server

    settings = Settings()
    configure_logging(settings)
    _need_bounce_domain(settings, bounce_smtp_port)
    relay = _relay_listen(settings, smtp_host or host, smtp_port, smtps_port)
    run_server(
        settings,
        host=host,
        port=port,
        access_log=access_log,
        worker=worker,
        processes=processes,
        bounce_port=bounce_smtp_port,
        metrics_listen=(metrics_host, metrics_port) if metrics_port is not None else None,
        relay=relay,
    )


def _need_bounce_domain(settings: Settings, port: int | None) -> None:
    if port is not None and not settings.bounce_domain:
        raise click.UsageError(
            "the bounce listener takes mail for MAILPASS_BOUNCE_DOMAIN: set it first"
        )


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@relay_options
@run_async
async def smtp(
    host: str, smtp_port: int | None, smtps_port: int | None, smtp_host: str | None
) -> None:
    """Run the SMTP relay alone (for installations that split roles): applications send
    through it with an API key as the password, and the queue workers deliver."""
    from mailpass.services import Services

    settings = Settings()
    configure_logging(settings)
    if smtp_port is None and smtps_port is None:
        smtp_port = 587
    listen = _relay_listen(settings, smtp_host or host, smtp_port, smtps_port)
    assert listen is not None
    services = Services.build(settings)
    try:
        await upgrade(services.database)
        try:
            relay = await listen.start(settings, services.relay())
        except OSError as exc:
            raise click.ClickException(f"cannot listen on {listen.host}: {exc}") from None
        ports = [f"{p} (STARTTLS)" for p in (smtp_port,) if p is not None]
        ports += [f"{p} (TLS)" for p in (smtps_port,) if p is not None]
        click.echo(f"SMTP relay on {listen.host}, port {' and '.join(ports)}", err=True)
        stopped = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signal_number in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signal_number, stopped.set)
        await stopped.wait()
        await relay.close()
    finally:
        await services.close()


@cli.command()
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to listen on (the MX's)."
)
@click.option("--port", default=2525, show_default=True, type=LISTEN_PORT)
@run_async
async def bounces(host: str, port: int) -> None:
    """Run the bounce listener alone: an SMTP server for MAILPASS_BOUNCE_DOMAIN's MX that
    records the bounces and complaints mailed back to MailPass's return paths."""
    from mailpass.intake.inbound import start_bounce_listener
    from mailpass.services import Services

    settings = Settings()
    configure_logging(settings)
    _need_bounce_domain(settings, port)
    services = Services.build(settings)
    try:
        await upgrade(services.database)
        try:
            listener = await start_bounce_listener(services.intake, host, port)
        except OSError as exc:
            raise click.ClickException(f"cannot listen on {host}:{port}: {exc}") from None
        click.echo(f"taking bounces for {settings.bounce_domain} on {host}:{port}", err=True)
        stopped = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signal_number in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signal_number, stopped.set)
        await stopped.wait()
        listener.close()
        await listener.wait_closed()
    finally:
        await services.close()


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
@click.option(
    "--metrics-port",
    type=LISTEN_PORT,
    help="Serve /metrics (Prometheus's text format) on this port, for every process.",
)
@click.option(
    "--metrics-host",
    default="127.0.0.1",
    show_default=True,
    help="Address the metrics port listens on.",
)
def worker(
    concurrency: int | None, processes: int, metrics_port: int | None, metrics_host: str
) -> None:
    """Run a queue worker until SIGTERM or Ctrl-C; any number may run, on any machine."""
    settings = Settings()
    configure_logging(settings)
    metrics = (metrics_host, metrics_port) if metrics_port is not None else None
    try:
        if processes == 1:
            run_fast(_run_worker(settings, concurrency, until_idle=False, metrics=metrics))
        else:
            _supervise_workers(settings, concurrency, processes, metrics)
    except (DatabaseUrlError, OSError) as exc:
        raise click.ClickException(str(exc)) from None


def _supervise_workers(
    settings: Settings,
    concurrency: int | None,
    processes: int,
    metrics: tuple[str, int] | None,
) -> None:
    # Imported here: mailpass.server brings the web app (~0.5 s), which one worker never needs.
    from mailpass.monitoring.http import serve_metrics_alone
    from mailpass.runtime.supervisor import ServerStartFailed, supervise

    asyncio.run(upgrade_url(settings.resolved_database_url))  # once, before any starts
    try:
        supervise(
            processes,
            _worker_process,
            (concurrency,),
            beside=partial(serve_metrics_alone, settings, *metrics) if metrics else None,
        )
    except ServerStartFailed as exc:
        raise click.ClickException(str(exc)) from None


def _worker_process(concurrency: int | None) -> None:
    """One process of ``worker --processes`` (spawned by the supervisor)."""
    settings = Settings()
    configure_logging(settings)
    run_fast(_run_worker(settings, concurrency, until_idle=False, migrate=False))


@cli.group()
def queue() -> None:
    """The batch queue."""


@queue.command("run")
@click.option("--concurrency", type=click.IntRange(min=1))
def queue_run(concurrency: int | None) -> None:
    """Send what is due now, then exit 0 (for a crontab)."""
    settings = Settings()
    configure_logging(settings)
    try:
        run_fast(_run_worker(settings, concurrency, until_idle=True))
    except (DatabaseUrlError, OSError) as exc:
        raise click.ClickException(str(exc)) from None


async def _run_worker(
    settings: Settings,
    concurrency: int | None,
    *,
    until_idle: bool,
    migrate: bool = True,
    metrics: tuple[str, int] | None = None,
) -> None:
    from mailpass.monitoring.http import metrics_server
    from mailpass.runtime.heap import freeze_startup_heap
    from mailpass.runtime.metrics import PROCESS_UP
    from mailpass.services import Services

    services = Services.build(settings)
    metrics_task = None
    try:
        if migrate:
            await upgrade(services.database)
        PROCESS_UP.set(1)
        measures = metrics_server(services.metrics, *metrics) if metrics else None
        if measures is not None:
            metrics_task = asyncio.create_task(measures.serve())
        queue_worker = services.worker(concurrency)
        # A worker that runs until stopped delivers the webhooks too (``queue run`` does not).
        dispatcher = None if until_idle else services.webhooks.dispatcher()
        freeze_startup_heap()
        loop = asyncio.get_running_loop()

        def stop() -> None:
            queue_worker.stop()
            if dispatcher is not None:
                dispatcher.stop()

        for signal_number in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signal_number, stop)
        dispatching = asyncio.create_task(dispatcher.run()) if dispatcher is not None else None
        await queue_worker.run(until_idle=until_idle)
        if dispatcher is not None and dispatching is not None:
            dispatcher.stop()
            await dispatching
            await dispatcher.close()
        click.echo(
            f"queue worker stopped: {queue_worker.sent} sent, {queue_worker.failed} failed, "
            f"{queue_worker.retried} to retry",
            err=True,
        )
        if measures is not None and metrics_task is not None:
            measures.should_exit = True
            await metrics_task
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
@click.option(
    "--relay-port",
    default=0,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port of the SMTP relay, on 127.0.0.1 (0: any free port).",
)
def dev(host: str, port: int, smtp_port: int, relay_port: int) -> None:
    """A first-run sandbox: server, a capture inbox as default provider, a ready API key, and
    the SMTP relay on a local port."""
    from mailpass.dev import run_dev

    settings = Settings()
    configure_logging(settings)
    try:
        asyncio.run(
            run_dev(settings, host=host, port=port, smtp_port=smtp_port, relay_port=relay_port)
        )
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
