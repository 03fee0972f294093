"""The real app served by uvicorn on a real port, in a thread of the test process, for clients
that talk real HTTP (the SDK, ``mailpass send``, schemathesis)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import uvicorn
from fastapi import FastAPI

from mailpass.api.app import create_app
from mailpass.server import uvicorn_config
from mailpass.services import Services
from process_fixtures import STARTUP_TIMEOUT, free_port

SHUTDOWN_TIMEOUT = 10.0  # seconds


@dataclass
class LiveServer:
    base_url: str
    app: FastAPI

    @property
    def services(self) -> Services:
        services: Services = self.app.state.services
        return services


@pytest.fixture
def live_server(settings, database) -> Iterator[LiveServer]:
    """``mailpass serve`` in-process: the app with its queue worker, on ``base_url``."""
    app = create_app(settings, worker=True)
    port = free_port()
    server = uvicorn.Server(uvicorn_config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="live-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the server did not start")
        time.sleep(0.02)
    yield LiveServer(f"http://127.0.0.1:{port}", app)
    server.should_exit = True
    thread.join(SHUTDOWN_TIMEOUT)
