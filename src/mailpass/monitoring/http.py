"""``--metrics-port``: ``/metrics`` on a port of its own (for a Prometheus inside the network
while the API's port faces the internet), served by uvicorn beside the process's other work."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from mailpass.config import Settings
from mailpass.monitoring.service import CONTENT_TYPE, MetricsService
from mailpass.storage.database import Database

__all__ = ["metrics_app", "metrics_server", "serve_metrics_alone"]

log = logging.getLogger("mailpass.monitoring")


def metrics_app(service: MetricsService) -> Starlette:
    async def metrics(_request: Request) -> Response:
        try:
            body = await service.render()
        except Exception:  # the database is away: say so, and the scrape shows it as down
            log.warning("metrics: the database could not be read", exc_info=True)
            return PlainTextResponse("the database is unavailable\n", status_code=503)
        return Response(body, media_type=CONTENT_TYPE)

    return Starlette(routes=[Route("/metrics", metrics, methods=["GET"])])


def metrics_server(service: MetricsService, host: str, port: int) -> uvicorn.Server:
    config = uvicorn.Config(
        metrics_app(service),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        server_header=False,
    )
    return _QuietServer(config)


class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves the process's signals to the process: it stops when its
    owner sets ``should_exit``."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def serve_metrics_alone(settings: Settings, host: str, port: int) -> None:
    """For a supervisor's thread: the metrics port until the process ends, with a database
    connection of its own; the measures are read from the processes' shared directory."""

    async def run() -> None:
        database = Database(settings.resolved_database_url)
        try:
            await metrics_server(MetricsService(settings, database), host, port).serve()
        finally:
            await database.dispose()

    asyncio.run(run())
