"""Running the ASGI app under uvicorn, with the fastest event loop and HTTP parser available."""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI

from mailpass.api.app import create_app
from mailpass.config import Settings

__all__ = ["run_server", "uvicorn_config"]


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
    settings: Settings, *, host: str, port: int, access_log: bool, worker: bool = True
) -> None:
    app = create_app(settings, worker=worker)
    uvicorn.Server(
        uvicorn_config(
            app, host=host, port=port, access_log=access_log, log_level=settings.log_level
        )
    ).run()
