"""One MailPass installation for a bench run, on a fresh SQLite file or a fresh PostgreSQL
database (dropped afterwards), set up and run with the ``mailpass`` command as a user would:
``users create``, ``providers add`` pointing at the sink, ``keys create``, then ``serve`` and
``worker`` processes (and ``providers set-tracking`` before the pixel is measured)."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import secrets
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from bench.payloads import BATCH_SIZE, batch_body, send_body
from bench.processes import BenchError, ManagedProcess, free_port, run_checked

__all__ = ["BatchPoster", "MailPassInstance", "send_messages"]

ACCOUNT = "bench@example.com"
PROVIDER = "sink"
SENDER = "sender@example.com"
HEALTH_TIMEOUT = 60.0  # seconds for `mailpass serve` to answer /healthz
HTTP_TIMEOUT = 120.0  # seconds for one API request of the bench's own client
# uvicorn closes a keep-alive connection idle for 5 s; a POST racing that close would fail and
# could not be safely retried (was it queued?), so a connection idle this long is replaced first.
IDLE_RECONNECT = 2.0  # seconds
# Settings the bench decides; every other MAILPASS_* variable of the caller's environment goes
# through unchanged, so a tuning knob can be tried without editing the bench.
OWN_SETTINGS = ("MAILPASS_DATABASE_URL", "MAILPASS_DATA_DIR", "MAILPASS_SECRET_KEY")


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _postgres_admin(admin_url: str, statement: str) -> None:
    connection = await asyncpg.connect(_asyncpg_dsn(admin_url))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


class MailPassInstance:
    def __init__(self, database: str, workdir: Path, *, postgres_url: str) -> None:
        self.database = database
        self.workdir = workdir
        self.postgres_url = postgres_url
        workdir.mkdir(parents=True, exist_ok=True)
        if database == "sqlite":
            self.url = f"sqlite:///{workdir / 'mailpass.sqlite3'}"
            self.postgres_name: str | None = None
        elif database == "postgresql":
            self.postgres_name = f"mailpass_bench_{os.getpid()}_{secrets.token_hex(3)}"
            self.url = (
                make_url(postgres_url)
                .set(database=self.postgres_name)
                .render_as_string(hide_password=False)
            )
        else:
            raise BenchError(f"unknown database {database!r}: sqlite or postgresql")
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in OWN_SETTINGS},
            "MAILPASS_DATABASE_URL": self.url,
            "MAILPASS_DATA_DIR": str(workdir / "data"),
            "MAILPASS_SECRET_KEY": secrets.token_urlsafe(48),
            # The bench's webhook endpoint (``bench.receiver``) listens on 127.0.0.1.
            "MAILPASS_WEBHOOKS_ALLOW_PRIVATE": "1",
            # GET /metrics on the API's port, scraped once the drain has filled the database.
            "MAILPASS_METRICS": "1",
        }
        self.env.pop("MAILPASS_DEBUG", None)
        self.created = False

    # ------------------------------------------------------------------ database

    def create_database(self) -> None:
        if self.postgres_name:
            statement = f'CREATE DATABASE "{self.postgres_name}"'
            asyncio.run(_postgres_admin(self.postgres_url, statement))
        self.created = True

    def drop_database(self) -> None:
        if self.postgres_name and self.created:
            statement = f'DROP DATABASE IF EXISTS "{self.postgres_name}" WITH (FORCE)'
            asyncio.run(_postgres_admin(self.postgres_url, statement))
        self.created = False

    def server_version(self) -> str:
        if self.postgres_name is None:
            import sqlite3

            return f"SQLite {sqlite3.sqlite_version}"

        async def query() -> str:
            connection = await asyncpg.connect(_asyncpg_dsn(self.url))
            try:
                return str(await connection.fetchval("SHOW server_version"))
            finally:
                await connection.close()

        return f"PostgreSQL {asyncio.run(query())}"

    def query(self, statement: sa.Executable) -> list[sa.Row[Any]]:
        """The rows of one read, on a connection of its own."""
        from mailpass.storage.database import Database

        async def read() -> list[sa.Row[Any]]:
            database = Database(self.url)
            try:
                async with database.read() as connection:
                    return list((await connection.execute(statement)).all())
            finally:
                await database.dispose()

        return asyncio.run(read())

    def status_counts(self) -> dict[str, int]:
        """How many messages are in each status: the run's check that nothing was lost."""
        from mailpass.storage.database import Database
        from mailpass.storage.tables import messages

        async def count() -> dict[str, int]:
            database = Database(self.url)
            try:
                async with database.read() as connection:
                    rows = await connection.execute(
                        sa.select(messages.c.status, sa.func.count()).group_by(messages.c.status)
                    )
                    return {str(status): int(n) for status, n in rows.all()}
            finally:
                await database.dispose()

        return asyncio.run(count())

    # ------------------------------------------------------------------ the mailpass command

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "mailpass", *args]

    def cli(self, *args: str, env: dict[str, str] | None = None) -> str:
        return run_checked(self.command(*args), env={**self.env, **(env or {})}).strip()

    def set_up(self, sink_port: int) -> str:
        """An account whose default provider is the sink; returns its API key."""
        return self.add_account(ACCOUNT, PROVIDER, sink_port)

    def add_account(self, email: str, provider: str, port: int) -> str:
        """An account whose default provider is the SMTP server on 127.0.0.1:``port``;
        returns its API key."""
        self.cli("users", "create", email)
        self.cli(
            "providers",
            "add",
            "--user",
            email,
            "--name",
            provider,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--security",
            "none",
            "--from-email",
            SENDER,
            "--default",
        )
        return self.cli(
            "keys", "create", "--user", email, "--name", "bench", "--permission", "mail"
        )

    def add_hook_provider(self, public_key: str, sink_port: int) -> str:
        """A SendGrid provider of the bench's account, with ``public_key`` as its Event
        Webhook's verification key; returns its hook's path."""
        self.cli(
            "providers",
            "add",
            "--user",
            ACCOUNT,
            "--name",
            "grid",
            "--kind",
            "sendgrid",
            "--host",
            "127.0.0.1",
            "--port",
            str(sink_port),
            "--security",
            "none",
        )
        url = self.cli("providers", "webhook", "grid", env={"MAILPASS_HOOK_KEY": public_key})
        return "/" + url.split("/", 3)[3]

    def add_webhook_endpoint(self, port: int, url: str) -> None:
        """An endpoint of the bench's account, through the API as a user adds one."""
        key = self.cli(
            "keys", "create", "--user", ACCOUNT, "--name", "hooks", "--permission", "webhooks"
        )
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            connection.request(
                "POST",
                "/api/v1/webhooks",
                body=json.dumps({"url": url}),
                headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            )
            answer = connection.getresponse()
            body = answer.read()
        finally:
            connection.close()
        if answer.status != 200:
            raise BenchError(f"POST /api/v1/webhooks answered {answer.status}: {body[:300]!r}")

    def pending_webhooks(self) -> int:
        """Deliveries in the outbox not yet made."""
        from mailpass.storage.database import Database
        from mailpass.storage.tables import webhook_deliveries

        async def count() -> int:
            database = Database(self.url)
            try:
                async with database.read() as connection:
                    found = await connection.execute(
                        sa.select(sa.func.count()).where(webhook_deliveries.c.state == "pending")
                    )
                    return int(found.scalar_one())
            finally:
                await database.dispose()

        return asyncio.run(count())

    def reported_events(self) -> int:
        """How many events providers reported by webhook are recorded."""
        from mailpass.storage.database import Database
        from mailpass.storage.tables import events

        async def count() -> int:
            database = Database(self.url)
            try:
                async with database.read() as connection:
                    found = await connection.execute(
                        sa.select(sa.func.count()).where(
                            events.c.event_type.in_(["delivered", "bounced"])
                        )
                    )
                    return int(found.scalar_one())
            finally:
                await database.dispose()

        return asyncio.run(count())

    def turn_on_open_tracking(self) -> None:
        """Open tracking for the account's provider, as a user turns it on: from now on, every
        html message it sends carries a pixel."""
        self.cli("providers", "set-tracking", "--user", ACCOUNT, PROVIDER, "--opens", "on")

    def open_pixel_paths(self, message_ids: list[str]) -> list[str]:
        """The pixel's path (``/t/o/TOKEN.gif``) of each of these messages: its tracking id as
        recorded in the database, signed as MailPass signs it, with this instance's secret."""
        from mailpass.storage.database import Database
        from mailpass.storage.tables import messages
        from mailpass.tracking.sending import OPEN_PATH
        from mailpass.tracking.tokens import TokenSigner

        async def tracking_ids() -> dict[str, str | None]:
            database = Database(self.url)
            try:
                async with database.read() as connection:
                    rows = await connection.execute(
                        sa.select(messages.c.message_id, messages.c.tracking_id).where(
                            messages.c.message_id.in_(message_ids)
                        )
                    )
                    return {str(message_id): tracking_id for message_id, tracking_id in rows.all()}
            finally:
                await database.dispose()

        found = asyncio.run(tracking_ids())
        untracked = [message_id for message_id in message_ids if not found.get(message_id)]
        if untracked:
            raise BenchError(
                f"open tracking is on, yet {len(untracked)} of {len(message_ids)} messages have "
                f"no tracking id, e.g. {untracked[0]}"
            )
        signer = TokenSigner(self.env["MAILPASS_SECRET_KEY"])
        return [
            OPEN_PATH.format(token=signer.open_token(str(found[message_id])))
            for message_id in message_ids
        ]

    def open_events(self) -> int:
        """How many opens are recorded, of every message."""
        from mailpass.storage.database import Database
        from mailpass.storage.tables import events

        async def count() -> int:
            database = Database(self.url)
            try:
                async with database.read() as connection:
                    opens = await connection.execute(
                        sa.select(sa.func.count()).where(events.c.event_type == "open")
                    )
                    return int(opens.scalar_one())
            finally:
                await database.dispose()

        return asyncio.run(count())

    def serve(
        self, name: str, *, worker: bool, processes: int = 1, extra: tuple[str, ...] = ()
    ) -> tuple[ManagedProcess, int]:
        """``mailpass serve`` (with ``extra`` options) on a free port, once it answers
        /healthz."""
        port = free_port()
        process = ManagedProcess(
            name,
            self.command(
                "serve",
                "--port",
                str(port),
                "--worker" if worker else "--no-worker",
                "--processes",
                str(processes),
                *extra,
            ),
            log=self.workdir / f"{name}.log",
            env=self.env,
        )
        deadline = time.monotonic() + HEALTH_TIMEOUT
        while True:
            process.check_alive()
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                connection.request("GET", "/healthz")
                if connection.getresponse().status == 200:
                    connection.close()
                    return process, port
            except OSError:
                pass
            if time.monotonic() > deadline:
                process.stop()
                raise BenchError(f"{name} did not become healthy in {HEALTH_TIMEOUT:.0f} s")
            time.sleep(0.1)

    def worker(self, name: str, *, processes: int = 1) -> ManagedProcess:
        return ManagedProcess(
            name,
            self.command("worker", "--processes", str(processes)),
            log=self.workdir / f"{name}.log",
            env=self.env,
        )


class BatchPoster:
    """Queues messages through ``/send-batch`` with a few keep-alive connections of its own.
    ``post`` blocks until all are queued and returns their message ids, without brackets."""

    def __init__(
        self,
        port: int,
        key: str,
        *,
        connections: int,
        body: Callable[[int], bytes] = batch_body,
    ) -> None:
        self.port = port
        self.key = key
        self.connections = connections
        self.body = body  # the batch of BATCH_SIZE messages numbered from its argument
        self.posted = 0  # messages queued so far
        self._lock = threading.Lock()

    def _post_one(self, connection: http.client.HTTPConnection, first: int) -> list[str]:
        connection.request(
            "POST",
            "/api/v1/mail/send-batch",
            body=self.body(first),
            headers={"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"},
        )
        response = connection.getresponse()
        payload = response.read()
        try:
            data = json.loads(payload)["data"]
            if response.status != 200 or data["queued"] != BATCH_SIZE:
                raise KeyError
        except (ValueError, KeyError, TypeError):
            raise BenchError(
                f"/send-batch answered {response.status}: {payload[:500].decode(errors='replace')}"
            ) from None
        return [item["message_id"].strip("<>") for item in data["messages"]]

    def post(
        self, messages: int, *, first: int, may_post: Callable[[], bool] | None = None
    ) -> list[str]:
        if messages % BATCH_SIZE:
            raise BenchError(f"{messages} messages are not whole batches of {BATCH_SIZE}")
        batches = iter(range(first, first + messages, BATCH_SIZE))
        ids: list[list[str]] = []

        def run() -> None:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=HTTP_TIMEOUT)
            last_used = time.monotonic()
            try:
                while True:
                    with self._lock:
                        start = next(batches, None)
                    if start is None:
                        return
                    while may_post is not None and not may_post():
                        time.sleep(0.01)
                    if time.monotonic() - last_used > IDLE_RECONNECT:
                        connection.close()  # the next request opens a new one
                    batch_ids = self._post_one(connection, start)
                    last_used = time.monotonic()
                    with self._lock:
                        ids.append(batch_ids)
                        self.posted += len(batch_ids)
            finally:
                connection.close()

        with ThreadPoolExecutor(self.connections) as pool:
            for future in [pool.submit(run) for _ in range(self.connections)]:
                future.result()
        return [message_id for batch in ids for message_id in batch]


def send_messages(port: int, key: str, count: int, *, first: int, connections: int) -> list[str]:
    """Sends ``count`` messages through ``/send`` (each delivered to the provider before it is
    answered) with a few keep-alive connections; returns their message ids, in order."""
    numbers = iter(range(first, first + count))
    ids: dict[int, str] = {}
    lock = threading.Lock()

    def run() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT)
        try:
            while True:
                with lock:
                    number = next(numbers, None)
                if number is None:
                    return
                connection.request(
                    "POST",
                    "/api/v1/mail/send",
                    body=send_body(number),
                    headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
                )
                response = connection.getresponse()
                payload = response.read()
                try:
                    data = json.loads(payload)["data"]
                    if response.status != 200 or data["status"] != "sent":
                        raise KeyError
                    message_id = str(data["message_id"])
                except (ValueError, KeyError, TypeError):
                    raise BenchError(
                        f"/send answered {response.status}: "
                        f"{payload[:500].decode(errors='replace')}"
                    ) from None
                with lock:
                    ids[number] = message_id
        finally:
            connection.close()

    with ThreadPoolExecutor(connections) as pool:
        for future in [pool.submit(run) for _ in range(connections)]:
            future.result()
    return [ids[number] for number in sorted(ids)]


def summarize(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {status}" for status, n in Counter(counts).most_common())
