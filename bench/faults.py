"""The fault figures, measured on an installation of their own for each database (so that
nothing left from one measurement flatters or burdens another), against the same sink:

1. **kill -9 of the worker mid-drain.** ``fault_messages`` queued, a ``mailpass worker`` started
   and killed with SIGKILL (its whole process group) once a third of them reached the sink,
   then started again: seconds from the restart until every message the dead worker held
   (``sending`` at the kill) is ``sent``, and the duplicates (messages the sink got twice:
   at most those in flight at the kill).
2. **The database cut off mid-drain** (PostgreSQL): the worker reaches the database through a
   TCP proxy of the bench's; once a third reached the sink, the proxy resets every connection
   and refuses new ones for ``outage_seconds``, then lets them through again: seconds from
   then until the next message reaches the sink, and until every message is ``sent``.
3. **A provider that hangs.** A second account's provider accepts connections and never says
   a word (as a wedged server does). ``fault_messages`` of the healthy account drained alone,
   then the same number queued behind ``hung_messages`` of the hung one: the healthy
   provider's drain rate, from the worker's start, both times.
4. **A bad-key flood.** ``GET /status`` with a valid key alone, then while wrk sends requests
   with ``FLOOD_KEYS`` random wrong keys from another client address (the API trusts the
   bench's ``X-Forwarded-For``): the valid key's p99 latency both times.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from bench.instance import BatchPoster, MailPassInstance
from bench.load import LoadResult, run_wrk
from bench.processes import BenchError, ManagedProcess, free_port
from bench.sink import SmtpSink
from bench.tools import Tools

if TYPE_CHECKING:
    from bench.measure import Sizes

__all__ = ["FaultFigures", "measure_faults"]

STALL_TIMEOUT = 120.0  # seconds without progress before the run fails
POSTER_CONNECTIONS = 4
FLOOD_KEYS = 10_000  # distinct wrong keys the flood goes round
FLOOD_CLIENTS = 16
VALID_FROM = "198.51.100.1"  # the client address of the valid key's requests
FLOOD_FROM = "203.0.113.7"  # and of the flood's
HUNG_ACCOUNT = "hung@example.com"
FIRST_KILL_NUMBER = 30_000_000  # message numbers of each measurement, apart from the others'
FIRST_OUTAGE_NUMBER = 31_000_000
FIRST_ALONE_NUMBER = 32_000_000
FIRST_HUNG_NUMBER = 33_000_000
FIRST_BESIDE_NUMBER = 34_000_000


@dataclass
class FaultFigures:
    database: str
    messages: int = 0  # of each drain
    kill_held: int = 0  # messages the killed worker held
    kill_first: float = 0.0  # restart to the first message at the sink
    kill_recovered: float = 0.0  # restart to every held message sent
    kill_duplicates: int = 0
    outage_seconds: float = 0.0
    back_moving: float | None = None  # database back to the next message at the sink
    back_drained: float | None = None  # database back to every message sent
    alone_rate: float = 0.0  # the healthy provider's drain, msg/s
    beside_hung_rate: float = 0.0  # the same while another provider hangs
    hung_messages: int = 0
    status_alone: LoadResult | None = None
    status_flooded: LoadResult | None = None
    flood: LoadResult | None = None
    exit_codes: dict[str, int] = field(default_factory=dict)

    def stop(self, process: ManagedProcess) -> None:
        self.exit_codes[process.name] = process.stop()


class HangingServer:
    """Accepts connections on 127.0.0.1 and never says a word."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0), backlog=1024)
        self.port = self._socket.getsockname()[1]
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._socket.accept()
            except OSError:  # closed
                return
            self._held.append(connection)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self._socket.close()
        self._thread.join(5)
        for connection in self._held:
            connection.close()


class CuttableProxy:
    """127.0.0.1:``port`` forwarded to ``target`` by a thread of its own, until ``cut()``: then
    every connection through it is reset and new ones refused, until ``restore()``."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self.restore()

    def _call(self, work: Callable[[], object]) -> None:
        async def run() -> None:
            result = work()
            if asyncio.iscoroutine(result):
                await result

        asyncio.run_coroutine_threadsafe(run(), self._loop).result(30)

    def restore(self) -> None:
        async def start() -> None:
            self._server = await asyncio.start_server(
                self._forward, "127.0.0.1", self.port, reuse_address=True
            )

        self._call(start)

    def cut(self) -> None:
        async def cut() -> None:
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()
                self._server = None
            for writer in list(self._open):
                writer.transport.abort()
            self._open.clear()

        self._call(cut)

    def close(self) -> None:
        self.cut()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._open |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            self._open.discard(writer)
            with contextlib.suppress(Exception):
                writer.transport.abort()


def _wait_until(check: Callable[[], bool], what: str, *, poll: float = 0.05) -> float:
    """``check()`` again and again until it holds; the monotonic time it did."""
    deadline = time.monotonic() + STALL_TIMEOUT
    while not check():
        if time.monotonic() > deadline:
            raise BenchError(f"{what}: not within {STALL_TIMEOUT:.0f} s")
        time.sleep(poll)
    return time.monotonic()


def _all_sent(instance: MailPassInstance, total: int) -> Callable[[], bool]:
    return lambda: instance.status_counts() == {"sent": total}


def _kill_mid_drain(
    instance: MailPassInstance,
    sink: SmtpSink,
    poster: BatchPoster,
    figures: FaultFigures,
    workers: int,
    sent_before: int,
) -> int:
    from mailpass.storage.tables import messages

    n = figures.messages
    poster.post(n, first=FIRST_KILL_NUMBER)
    base = sink.received()
    worker = instance.worker("kill9-worker", processes=workers)
    sink.wait_for(base + n // 3, stall_timeout=STALL_TIMEOUT, watch=[worker])
    os.killpg(worker.pid, signal.SIGKILL)
    worker.process.wait()
    worker.stop()  # closes its log; its status is SIGKILL's, as intended
    held = [
        row.id
        for row in instance.query(sa.select(messages.c.id).where(messages.c.status == "sending"))
    ]
    at_restart = sink.received()
    restarted = time.monotonic()
    again = instance.worker("restarted-worker", processes=workers)
    try:
        if at_restart < base + n:
            first = sink.wait_for(at_restart + 1, stall_timeout=STALL_TIMEOUT, watch=[again])
            figures.kill_first = first - restarted
        figures.kill_held = len(held)
        if held:
            still = sa.select(sa.func.count()).where(
                messages.c.id.in_(held), messages.c.status != "sent"
            )
            done = _wait_until(
                lambda: instance.query(still)[0][0] == 0, "the dead worker's messages sent"
            )
            figures.kill_recovered = done - restarted
        _wait_until(_all_sent(instance, sent_before + n), "every message sent after the kill")
        figures.kill_duplicates = sink.received() - base - n
    finally:
        figures.stop(again)
    return sent_before + n


def _database_cut_mid_drain(
    instance: MailPassInstance,
    sink: SmtpSink,
    poster: BatchPoster,
    figures: FaultFigures,
    workers: int,
    sent_before: int,
    outage_seconds: float,
) -> int:
    url = make_url(instance.url)
    proxy = CuttableProxy(url.host or "127.0.0.1", url.port or 5432)
    try:
        through = url.set(port=proxy.port).render_as_string(hide_password=False)
        n = figures.messages
        poster.post(n, first=FIRST_OUTAGE_NUMBER)
        base = sink.received()
        worker = ManagedProcess(
            "outage-worker",
            instance.command("worker", "--processes", str(workers)),
            log=instance.workdir / "outage-worker.log",
            env={**instance.env, "MAILPASS_DATABASE_URL": through},
        )
        try:
            sink.wait_for(base + n // 3, stall_timeout=STALL_TIMEOUT, watch=[worker])
            proxy.cut()
            time.sleep(outage_seconds)
            at_return = sink.received()
            proxy.restore()
            back = time.monotonic()
            figures.outage_seconds = outage_seconds
            if at_return < base + n:
                moving = sink.wait_for(at_return + 1, stall_timeout=STALL_TIMEOUT, watch=[worker])
                figures.back_moving = moving - back
            drained = _wait_until(
                _all_sent(instance, sent_before + n), "every message sent after the outage"
            )
            figures.back_drained = drained - back
        finally:
            figures.stop(worker)
    finally:
        proxy.close()
    return sent_before + n


def _drain_rate(
    instance: MailPassInstance,
    sink: SmtpSink,
    name: str,
    messages: int,
    workers: int,
    figures: FaultFigures,
) -> float:
    """Messages per second from starting a worker until the sink has ``messages`` more."""
    base = sink.received()
    started = time.monotonic()
    worker = instance.worker(name, processes=workers)
    try:
        finished = sink.wait_for(base + messages, stall_timeout=STALL_TIMEOUT, watch=[worker])
    finally:
        figures.stop(worker)
    return messages / (finished - started)


def _beside_a_hung_provider(
    instance: MailPassInstance,
    sink: SmtpSink,
    port: int,
    poster: BatchPoster,
    figures: FaultFigures,
    workers: int,
    sent_before: int,
) -> tuple[int, list[str]]:
    n = figures.messages
    ids = poster.post(n, first=FIRST_ALONE_NUMBER)
    figures.alone_rate = _drain_rate(instance, sink, "alone-worker", n, workers, figures)
    hung = HangingServer()
    try:
        hung_key = instance.add_account(HUNG_ACCOUNT, "hung", hung.port)
        hung_poster = BatchPoster(port, hung_key, connections=POSTER_CONNECTIONS)
        hung_poster.post(figures.hung_messages, first=FIRST_HUNG_NUMBER)  # queued first
        poster.post(n, first=FIRST_BESIDE_NUMBER)
        figures.beside_hung_rate = _drain_rate(
            instance, sink, "beside-hung-worker", n, workers, figures
        )
    finally:
        hung.close()
    return sent_before + 2 * n, ids


def _flood(
    tools: Tools,
    port: int,
    key: str,
    ids: list[str],
    sizes: Sizes,
    workdir: Path,
    figures: FaultFigures,
) -> None:
    ids_file = workdir / "fault-status-ids.txt"
    ids_file.write_text("\n".join(ids[: sizes.status_ids]) + "\n")
    url = f"http://127.0.0.1:{port}/"
    status_args = ["status", str(ids_file), key, VALID_FROM]
    figures.status_alone = run_wrk(
        tools.wrk,
        url,
        connections=sizes.status_clients,
        seconds=sizes.seconds,
        script_args=status_args,
    )
    flooded: list[LoadResult] = []
    failure: list[BaseException] = []

    def flood() -> None:
        try:
            flooded.append(
                run_wrk(
                    tools.wrk,
                    url,
                    connections=FLOOD_CLIENTS,
                    seconds=sizes.seconds,
                    script_args=["flood", str(FLOOD_KEYS), FLOOD_FROM],
                )
            )
        except BaseException as exc:  # reported below
            failure.append(exc)

    flooding = threading.Thread(target=flood)
    flooding.start()
    try:
        figures.status_flooded = run_wrk(
            tools.wrk,
            url,
            connections=sizes.status_clients,
            seconds=sizes.seconds,
            script_args=status_args,
        )
    finally:
        flooding.join()
    if failure:
        raise BenchError(f"the bad-key flood failed: {failure[0]}")
    figures.flood = flooded[0]


def measure_faults(
    database: str,
    tools: Tools,
    sink: SmtpSink,
    sizes: Sizes,
    workdir: Path,
    *,
    postgres_url: str,
    progress: Callable[[str], None],
) -> FaultFigures:
    figures = FaultFigures(
        database=database, messages=sizes.fault_messages, hung_messages=sizes.hung_messages
    )
    workers = sizes.workers_for(database)
    instance = MailPassInstance(database, workdir, postgres_url=postgres_url)
    # The bench's requests name their client address, as a proxy in front of MailPass would.
    instance.env["MAILPASS_TRUSTED_PROXIES"] = "127.0.0.1"
    with contextlib.ExitStack() as cleanup:
        instance.create_database()
        cleanup.callback(instance.drop_database)
        key = instance.set_up(sink.port)
        api, port = instance.serve("fault-api", worker=False, processes=sizes.api_processes)
        cleanup.callback(figures.stop, api)
        poster = BatchPoster(port, key, connections=POSTER_CONNECTIONS)

        progress(f"{database}: kill -9 of the worker mid-drain of {figures.messages:,}")
        sent = _kill_mid_drain(instance, sink, poster, figures, workers, 0)
        if database == "postgresql":
            progress(f"{database}: the database cut off for {sizes.outage_seconds:g} s mid-drain")
            sent = _database_cut_mid_drain(
                instance, sink, poster, figures, workers, sent, sizes.outage_seconds
            )
        progress(f"{database}: a healthy provider's drain, alone and beside a hung one")
        sent, ids = _beside_a_hung_provider(instance, sink, port, poster, figures, workers, sent)
        progress(f"{database}: GET /status alone and during a bad-key flood")
        _flood(tools, port, key, ids, sizes, workdir, figures)
    return figures
