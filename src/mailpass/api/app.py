"""The ASGI application: routes, the seed's error envelope for every failure, the body limit."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mailpass import __version__
from mailpass.api import domains, hooks, keys, mail, providers, suppressions, tracking, webhooks
from mailpass.api.auth import ThrottledAddresses
from mailpass.api.health import readiness_answer
from mailpass.api.openapi import install_api_docs
from mailpass.api.outages import OutageLog, OutageMiddleware
from mailpass.api.request_ids import RequestIds
from mailpass.api.responses import error_response, success_response
from mailpass.config import Settings
from mailpass.dashboard import install as dashboard_install
from mailpass.errors import (
    ApiError,
    HeadersTooLarge,
    InternalError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RequestTimeout,
    ValidationError,
)
from mailpass.intake.inbound import start_bounce_listener
from mailpass.monitoring.http import metrics_server
from mailpass.monitoring.service import CONTENT_TYPE as METRICS_CONTENT_TYPE
from mailpass.relay.server import RelayListen
from mailpass.runtime.metrics import PROCESS_UP
from mailpass.runtime.tasks import TaskFailed, run_supervised
from mailpass.services import Services
from mailpass.storage.migrate import upgrade

__all__ = ["create_app"]

log = logging.getLogger("mailpass.api")


def _worker_ended(app: FastAPI, task: asyncio.Task[None]) -> None:
    """The queue worker gave up (``TaskFailed``): the server stops, and the process exits with
    ``EXIT_TASK_FAILED`` (``server.run_server``), rather than take mail nobody sends."""
    if task.cancelled() or not isinstance(task.exception(), TaskFailed):
        return
    app.state.task_failed = True
    stop_server = getattr(app.state, "stop_server", None)
    if stop_server is not None:
        stop_server()


def create_app(
    settings: Settings | None = None,
    *,
    migrate: bool = True,
    worker: bool = False,
    bounce_listen: tuple[str, int, bool] | None = None,
    metrics_listen: tuple[str, int] | None = None,
    relay_listen: RelayListen | None = None,
) -> FastAPI:
    """The app; with ``worker``, the queue worker runs in the same process for its lifetime;
    with ``bounce_listen`` (host, port, reuse_port), the bounce listener (``intake.inbound``);
    with ``metrics_listen`` (host, port), ``/metrics`` on that port (``monitoring.http``);
    with ``relay_listen``, the SMTP relay (``relay.server``)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = Services.build(settings)
        if migrate:
            await upgrade(services.database)
        app.state.services = services
        PROCESS_UP.set(1)
        metrics = metrics_server(services.metrics, *metrics_listen) if metrics_listen else None
        metrics_task = asyncio.create_task(metrics.serve()) if metrics is not None else None
        queue_worker = services.worker() if worker else None
        worker_task = (
            asyncio.create_task(run_supervised("the queue worker", queue_worker.run, log))
            if queue_worker
            else None
        )
        if worker_task is not None:
            worker_task.add_done_callback(lambda task: _worker_ended(app, task))
        # Where the queue worker runs, so does the webhook dispatcher.
        dispatcher = services.webhooks.dispatcher() if worker else None
        dispatcher_task = (
            asyncio.create_task(run_supervised("the webhook dispatcher", dispatcher.run, log))
            if dispatcher
            else None
        )
        bounces = None
        if bounce_listen is not None:
            host, port, reuse_port = bounce_listen
            bounces = await start_bounce_listener(
                services.intake, host, port, reuse_port=reuse_port
            )
        relay = (
            await relay_listen.start(settings, services.relay())
            if relay_listen is not None
            else None
        )
        try:
            yield
        finally:
            if relay is not None:
                await relay.close()
            if metrics is not None and metrics_task is not None:
                metrics.should_exit = True
                await metrics_task
            if bounces is not None:
                bounces.close()
                await bounces.wait_closed()
            if queue_worker is not None and worker_task is not None:
                queue_worker.stop()
                with contextlib.suppress(TaskFailed):
                    await worker_task
            if dispatcher is not None and dispatcher_task is not None:
                dispatcher.stop()
                with contextlib.suppress(TaskFailed):
                    await dispatcher_task
                await dispatcher.close()
            await services.close()

    app = FastAPI(
        title="MailPass",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.outage_log = OutageLog()
    app.state.task_failed = False  # set when the queue worker gave up (``_worker_ended``)
    app.include_router(mail.router)
    app.include_router(suppressions.router)
    app.include_router(hooks.router)
    app.include_router(webhooks.router)
    app.include_router(providers.router)
    app.include_router(domains.router)
    app.include_router(keys.router)
    install_api_docs(app)

    # HEAD too: some load balancers' health checks send it.
    @app.api_route("/healthz", methods=["GET", "HEAD"], include_in_schema=False)
    async def healthz() -> Response:
        return success_response({"status": "ok"})

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> Response:
        return await readiness_answer(request.app.state.services)

    if settings.metrics:

        @app.get("/metrics", include_in_schema=False)
        async def metrics_page(request: Request) -> Response:
            services: Services = request.app.state.services
            return Response(await services.metrics.render(), media_type=METRICS_CONTENT_TYPE)

    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _request_validation_error)
    app.add_exception_handler(ClientDisconnect, _client_disconnected)
    app.add_exception_handler(Exception, _unexpected_error)
    # After the API's handlers: dashboard paths get HTML error pages, the API keeps its JSON.
    dashboard_install(app)
    app.add_middleware(OutageMiddleware, outages=app.state.outage_log)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        max_header_bytes=settings.max_header_bytes,
        body_timeout=settings.request_body_timeout,
    )
    app.add_middleware(ThrottledAddresses)
    app.add_middleware(RequestIds)  # every answer and log line but the pixel's carries its id
    tracking.install(app)  # last: the pixel is answered in front of everything above
    return app


async def _api_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error_response(NotFound(f"no route {request.method} {request.url.path}"))
    if exc.status_code == 405:
        return error_response(
            MethodNotAllowed(
                f"{request.method} is not allowed on {request.url.path}",
                headers=dict(exc.headers or {}),  # Allow: the methods that are
            )
        )
    error = ApiError(str(exc.detail))
    error.http_status = exc.status_code  # type: ignore[misc]
    return error_response(error)


async def _request_validation_error(_request: Request, exc: Exception) -> Response:
    return error_response(ValidationError("the request is invalid"))


async def _client_disconnected(request: Request, _exc: Exception) -> Response:
    # The client hung up before its body arrived: nothing was read, nothing happened, and
    # nobody will see this answer. Not a server fault, so no traceback in the log.
    log.info("client disconnected during %s %s", request.method, request.url.path)
    return error_response(ValidationError("the request body did not arrive completely"))


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error answering %s %s", request.method, request.url.path)
    return error_response(InternalError("an unexpected error occurred; it has been logged"))


class BodyLimitMiddleware:
    """What a request may take: 431 HEADERS_TOO_LARGE for header fields over
    ``max_header_bytes``, 413 PAYLOAD_TOO_LARGE for a body over ``max_bytes`` (declared or
    streamed), 408 REQUEST_TIMEOUT for a body that stops arriving for ``body_timeout`` seconds
    (a client that never finishes its body holds nothing for longer)."""

    def __init__(
        self, app: ASGIApp, *, max_bytes: int, max_header_bytes: int, body_timeout: float
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_header_bytes = max_header_bytes
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header_bytes = 0
        declared = None
        for name, value in scope["headers"]:
            header_bytes += len(name) + len(value) + 4  # ": " and CRLF
            if name == b"content-length":
                declared = value
        if header_bytes > self.max_header_bytes:
            too_large = HeadersTooLarge.over(self.max_header_bytes)
            await error_response(too_large)(scope, receive, send)
            return
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(scope, receive, send)
            return

        received = 0
        body_done = False

        async def limited_receive() -> Message:
            nonlocal received, body_done
            if body_done:  # later receives wait for a disconnect: no deadline for those
                return await receive()
            try:
                async with asyncio.timeout(self.body_timeout):
                    message = await receive()
            except TimeoutError:
                raise RequestTimeout(
                    f"the request body stopped arriving: nothing for {self.body_timeout:g} seconds"
                ) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise self._error()
                body_done = not message.get("more_body", False)
            return message

        await self.app(scope, limited_receive, send)

    def _error(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"the request body is larger than {self.max_bytes} bytes")

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        await error_response(self._error())(scope, receive, send)
