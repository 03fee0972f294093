"""Running the ASGI app under uvicorn, with the fastest event loop and HTTP parser available.

One process uses one core. ``processes > 1`` runs that many server processes on one port, each
with a listening socket of its own (``SO_REUSEPORT``), so that the kernel spreads incoming
connections evenly across them. With one socket shared by every process (uvicorn's own
``--workers``), whichever process was awake took the connections as they came: a client's 16
keep-alive connections all landed on one process and left the other core idle.

Each process has its own event loop, connection pools and, unless ``--no-worker``, its own
queue worker, which is safe because workers claim messages with leases and tokens. Migrations
run once, in the supervisor (``runtime.supervisor``), before any of them starts. ``mailpass
worker --processes`` runs queue workers under the same supervisor.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import sys
from dataclasses import replace
from functools import partial

import uvicorn
from fastapi import FastAPI
from uvicorn.config import STARTUP_FAILURE

from mailpass.api.app import create_app
from mailpass.config import Settings
from mailpass.monitoring.http import serve_metrics_alone
from mailpass.relay.server import RelayListen
from mailpass.runtime.heap import freeze_startup_heap
from mailpass.runtime.http import http_protocol
from mailpass.runtime.logs import configure_logging
from mailpass.runtime.supervisor import supervise
from mailpass.runtime.tasks import EXIT_TASK_FAILED
from mailpass.storage.migrate import upgrade_url

__all__ = ["PortInUse", "run_server", "uvicorn_config"]

LISTEN_BACKLOG = 2048  # pending connections per process, uvicorn's default


class PortInUse(OSError):
    """Another program already listens on the address ``serve`` was given."""


def uvicorn_config(
    app: FastAPI,
    *,
    host: str,
    port: int,
    access_log: bool = False,
    log_level: str = "info",
    max_header_bytes: int | None = None,
    log_format: str = "text",
) -> uvicorn.Config:
    # With JSON logs, uvicorn's own lines go through the process's JSON handler
    # (``runtime.logs``) instead of the handlers of uvicorn's default configuration.
    logging_config = {} if log_format == "text" else {"log_config": None}
    return uvicorn.Config(
        app,
        **logging_config,  # type: ignore[arg-type]
        host=host,
        port=port,
        loop="auto",  # uvloop when installed
        http=http_protocol(max_header_bytes),
        lifespan="on",
        access_log=access_log,
        log_level=log_level,
        server_header=False,
        # A load balancer in front sets X-Forwarded-For; trusting it is tracking's business,
        # decided per configured proxy, so uvicorn must not rewrite the client address.
        proxy_headers=False,
    )


def run_server(
    settings: Settings,
    *,
    host: str,
    port: int,
    access_log: bool,
    worker: bool = True,
    processes: int = 1,
    bounce_port: int | None = None,
    metrics_listen: tuple[str, int] | None = None,
    relay: RelayListen | None = None,
) -> None:
    if processes == 1:
        bounces = (host, bounce_port, False) if bounce_port is not None else None
        app = create_app(
            settings,
            worker=worker,
            bounce_listen=bounces,
            metrics_listen=metrics_listen,
            relay_listen=relay,
        )
        server = _Server(
            uvicorn_config(
                app,
                host=host,
                port=port,
                access_log=access_log,
                log_level=settings.log_level,
                max_header_bytes=settings.max_header_bytes,
                log_format=settings.log_format,
            )
        )
        server.run()
        _exit_if_a_task_failed(app)
        return
    asyncio.run(upgrade_url(settings.resolved_database_url))
    _check_port_free(host, port)
    if bounce_port is not None:
        _check_port_free(host, bounce_port)
    if metrics_listen is not None:
        _check_port_free(*metrics_listen)
    if relay is not None:
        for relay_port in (relay.smtp_port, relay.smtps_port):
            if relay_port is not None:
                _check_port_free(relay.host, relay_port)
        relay = replace(relay, reuse_port=True)
    supervise(
        processes,
        _serve_one,
        (host, port, access_log, settings.log_level, worker, bounce_port, relay),
        # The supervisor serves the metrics port: it tells every process's measures.
        beside=partial(serve_metrics_alone, settings, *metrics_listen) if metrics_listen else None,
    )


class _Server(uvicorn.Server):
    """uvicorn's server, which settles the process's heap once the app has started, and which
    the app can stop (``app.state.stop_server``: a task it cannot do without gave up)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        app = config.app
        if isinstance(app, FastAPI):
            app.state.stop_server = self._stop

    def _stop(self) -> None:
        self.should_exit = True

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            freeze_startup_heap()


def _serve_one(
    host: str,
    port: int,
    access_log: bool,
    log_level: str,
    worker: bool,
    bounce_port: int | None,
    relay: RelayListen | None,
) -> None:
    """One server process (in a child spawned by the supervisor): its own listening socket,
    and its own on the bounce and relay ports (``SO_REUSEPORT`` too)."""
    settings = Settings()
    bounces = (host, bounce_port, True) if bounce_port is not None else None
    app = create_app(
        settings, migrate=False, worker=worker, bounce_listen=bounces, relay_listen=relay
    )
    config = uvicorn_config(
        app,
        host=host,
        port=port,
        access_log=access_log,
        log_level=log_level,
        max_header_bytes=settings.max_header_bytes,
        log_format=settings.log_format,
    )
    configure_logging(settings.log_level, settings.log_format)
    config.configure_logging()
    server = _Server(config)
    server.run(sockets=[_reuse_port_socket(host, port)])
    if not server.started:  # its start-up failed (and uvicorn logged why)
        sys.exit(STARTUP_FAILURE)
    _exit_if_a_task_failed(app)


def _exit_if_a_task_failed(app: FastAPI) -> None:
    if app.state.task_failed:  # logged when it gave up
        sys.exit(EXIT_TASK_FAILED)


def _address_family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _reuse_port_socket(host: str, port: int) -> socket.socket:
    listener = socket.socket(_address_family(host), socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.bind((host, port))
    listener.listen(LISTEN_BACKLOG)
    listener.set_inheritable(True)
    return listener


def _check_port_free(host: str, port: int) -> None:
    """Fail now if something listens there: SO_REUSEPORT would otherwise let our processes
    share the port with another ``serve``."""
    probe = socket.socket(_address_family(host), socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(f"{host}:{port} is already in use") from None
        raise
    finally:
        probe.close()
