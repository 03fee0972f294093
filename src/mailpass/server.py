"""Running the ASGI app under uvicorn, with the fastest event loop and HTTP parser available.

One process uses one core. ``processes > 1`` runs that many uvicorn worker processes on one
listening socket (uvicorn's supervisor starts, watches and stops them): each has its own event
loop, connection pools and, unless ``--no-worker``, its own queue worker, which is safe because
workers claim messages with leases and tokens. Migrations run once, in the supervisor, before
any of them starts.
"""

from __future__ import annotations

import asyncio
import os

import uvicorn
from fastapi import FastAPI

from mailpass.api.app import create_app
from mailpass.config import Settings
from mailpass.storage.database import Database
from mailpass.storage.migrate import upgrade

__all__ = ["process_app", "run_server", "uvicorn_config"]

# How the supervisor tells its worker processes (which import ``process_app``) whether to run a
# queue worker; everything else they read from the same MAILPASS_* environment.
_QUEUE_WORKER_VARIABLE = "MAILPASS_SERVE_QUEUE_WORKER"


def uvicorn_config(
    app: FastAPI, *, host: str, port: int, access_log: bool = False, log_level: str = "info"
) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="auto",  # uvloop when installed
        http="auto",  # httptools when installed
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
) -> None:
    if processes == 1:
        app = create_app(settings, worker=worker)
        uvicorn.Server(
            uvicorn_config(
                app, host=host, port=port, access_log=access_log, log_level=settings.log_level
            )
        ).run()
        return
    asyncio.run(_migrate(settings))
    os.environ[_QUEUE_WORKER_VARIABLE] = "1" if worker else "0"
    uvicorn.run(
        "mailpass.server:process_app",
        factory=True,
        workers=processes,
        host=host,
        port=port,
        loop="auto",
        http="auto",
        lifespan="on",
        access_log=access_log,
        log_level=settings.log_level,
        server_header=False,
        proxy_headers=False,
    )


def process_app() -> FastAPI:
    """The app of one of several ``serve`` processes (the supervisor has migrated already)."""
    worker = os.environ.get(_QUEUE_WORKER_VARIABLE, "1") == "1"
    return create_app(Settings(), migrate=False, worker=worker)


async def _migrate(settings: Settings) -> None:
    database = Database(settings.resolved_database_url)
    try:
        await upgrade(database)
    finally:
        await database.dispose()
