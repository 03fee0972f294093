"""Running the ASGI app under uvicorn, with the fastest event loop and HTTP parser available.

One process uses one core. ``processes > 1`` runs that many server processes on one port, each
with a listening socket of its own (``SO_REUSEPORT``), so that the kernel spreads incoming
connections evenly across them. With one socket shared by every process (uvicorn's own
``--workers``), whichever process was awake took the connections as they came: a client's 16
keep-alive connections all landed on one process and left the other core idle.

Each process has its own event loop, connection pools and, unless ``--no-worker``, its own
queue worker, which is safe because workers claim messages with leases and tokens. Migrations
run once, in the supervisor, before any of them starts. The supervisor forwards SIGTERM and
SIGINT, waits for every process to finish its graceful shutdown, and starts a new process in
place of one that died: after a second, and after twice as long each time its replacements
keep dying young (``restart_pause``). ``mailpass worker --processes`` runs queue workers under
the same supervisor (``supervise``).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any, cast

import uvicorn
from fastapi import FastAPI
from uvicorn.config import STARTUP_FAILURE

from mailpass.api.app import create_app
from mailpass.config import Settings
from mailpass.services import started
from mailpass.storage.migrate import upgrade_url

__all__ = [
    "PortInUse",
    "ServerStartFailed",
    "restart_pause",
    "run_server",
    "supervise",
    "uvicorn_config",
]

log = logging.getLogger("mailpass.server")

LISTEN_BACKLOG = 2048  # pending connections per process, uvicorn's default
RESTART_PAUSE = 1.0  # seconds before a process that died is replaced (no busy crash loop)...
RESTART_PAUSE_MAX = 30.0  # ...doubling, up to this, while its replacements keep dying young
STEADY_AFTER = 60.0  # seconds a process must have run for its death to count as a first one
SUPERVISOR_TICK = 0.5  # seconds between the supervisor's looks at its processes


class PortInUse(OSError):
    """Another program already listens on the address ``serve`` was given."""


class ServerStartFailed(RuntimeError):
    """A process of ``serve --processes`` or ``worker --processes`` could not start (it logged
    why)."""


def uvicorn_config(
    app: FastAPI, *, host: str, port: int, access_log: bool = False, log_level: str = "info"
) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="auto",  # uvloop when installed
        http=_http_protocol(),
        lifespan="on",
        access_log=access_log,
        log_level=log_level,
        server_header=False,
        # A load balancer in front sets X-Forwarded-For; trusting it is tracking's business,
        # decided per configured proxy, so uvicorn must not rewrite the client address.
        proxy_headers=False,
    )


class _CoalescedWrites:
    """A connection's transport whose writes made in one step of the event loop go out
    together, in one ``send``, at the end of that step.

    uvicorn writes a response's head and its body separately, so every response cost two
    sends; on loopback each send also wakes the reader. Those writes were the largest single
    cost of a /status request (21 % of its samples). Joined they are 18 %: one send costs
    nearly what two did. Everything but writing and closing is the transport's own.
    """

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(bytes(data))

    def writelines(self, chunks: Iterable[bytes | bytearray | memoryview]) -> None:
        for chunk in chunks:
            self.write(chunk)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def _flush(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending = []
        if not self._transport.is_closing():
            self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _http_protocol() -> type[asyncio.Protocol] | str:
    """httptools' protocol with coalesced writes, or uvicorn's choice without httptools."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        return "auto"

    # Only connection_made is overridden, and it uses nothing of uvicorn's but the method itself
    # (the loop is the running one, as it is for every protocol callback).
    class CoalescingHttpToolsProtocol(HttpToolsProtocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            coalesced = _CoalescedWrites(transport, asyncio.get_running_loop())
            super().connection_made(cast(asyncio.Transport, coalesced))

    return CoalescingHttpToolsProtocol


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
        _Server(
            uvicorn_config(
                app, host=host, port=port, access_log=access_log, log_level=settings.log_level
            )
        ).run()
        return
    asyncio.run(upgrade_url(settings.resolved_database_url))
    _check_port_free(host, port)
    supervise(processes, _serve_one, (host, port, access_log, settings.log_level, worker))


def supervise(processes: int, target: Callable[..., None], arguments: tuple[Any, ...]) -> None:
    """Run ``target(*arguments)`` in ``processes`` spawned processes until SIGTERM or SIGINT,
    replacing one that dies (``restart_pause``); raise `ServerStartFailed` if one exits with
    uvicorn's ``STARTUP_FAILURE`` (another try would fail the same way)."""
    _Supervisor(processes, target, arguments).run()


class _Server(uvicorn.Server):
    """uvicorn's server, which tells the process when the app has started (``started``)."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            started()


def restart_pause(previous: float | None, lived: float) -> float:
    """Seconds to wait before replacing a process that died after running ``lived`` seconds,
    when the replacement before it waited ``previous`` (None: there was none): a process that
    keeps failing is retried ever less often, not every second forever."""
    if previous is None or lived >= STEADY_AFTER:
        return RESTART_PAUSE
    return min(previous * 2, RESTART_PAUSE_MAX)


class _Slot:
    """One of the supervisor's processes, and when it is to be replaced once it has died."""

    def __init__(self, process: BaseProcess) -> None:
        self.process = process
        self.started_at = time.monotonic()
        self.pause: float | None = None  # the last wait before a replacement
        self.restart_at: float | None = None  # set while a dead one waits to be replaced


class _Supervisor:
    def __init__(
        self, processes: int, target: Callable[..., None], arguments: tuple[Any, ...]
    ) -> None:
        self.count = processes
        self.target = target
        self.arguments = arguments
        self.context = multiprocessing.get_context("spawn")
        self.slots: list[_Slot] = []
        self.stopping = threading.Event()
        self.failed = False

    def run(self) -> None:
        previous = {
            signum: signal.signal(signum, self._stop) for signum in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            self.slots = [_Slot(self._start()) for _ in range(self.count)]
            while not self.stopping.wait(SUPERVISOR_TICK):
                for slot in self.slots:
                    self._look_after(slot)
            for slot in self.slots:
                child = slot.process
                if child.is_alive() and child.pid is not None:
                    os.kill(child.pid, signal.SIGTERM)
            for slot in self.slots:
                slot.process.join()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        if self.failed:
            raise ServerStartFailed("a process could not start; its log says why")

    def _look_after(self, slot: _Slot) -> None:
        """Replace ``slot``'s process if it died, once its pause is over; the loop goes on
        looking after the others meanwhile."""
        child = slot.process
        if child.is_alive() or self.stopping.is_set():
            return
        now = time.monotonic()
        if slot.restart_at is None:
            if child.exitcode == STARTUP_FAILURE:
                # Another try would fail the same way: stop the others and say so.
                self.stopping.set()
                self.failed = True
                return
            slot.pause = restart_pause(slot.pause, now - slot.started_at)
            slot.restart_at = now + slot.pause
            log.error(
                "process %s exited with %s after %.0f s; starting another in %g s",
                child.pid,
                child.exitcode,
                now - slot.started_at,
                slot.pause,
            )
        elif now >= slot.restart_at:
            slot.process = self._start()
            slot.started_at = time.monotonic()
            slot.restart_at = None

    def _start(self) -> BaseProcess:
        child = self.context.Process(target=self.target, args=self.arguments, daemon=False)
        child.start()
        return child

    def _stop(self, _signum: int, _frame: FrameType | None) -> None:
        self.stopping.set()


def _serve_one(host: str, port: int, access_log: bool, log_level: str, worker: bool) -> None:
    """One server process (in a child spawned by the supervisor): its own listening socket."""
    app = create_app(Settings(), migrate=False, worker=worker)
    config = uvicorn_config(app, host=host, port=port, access_log=access_log, log_level=log_level)
    config.configure_logging()
    server = _Server(config)
    server.run(sockets=[_reuse_port_socket(host, port)])
    if not server.started:  # its start-up failed (and uvicorn logged why)
        sys.exit(STARTUP_FAILURE)


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
