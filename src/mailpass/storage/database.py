"""Connecting to SQLite or PostgreSQL, and the two kinds of transaction MailPass uses.

Repositories take a ``Connection``: ``await connection.execute(statement)`` returns a buffered
SQLAlchemy result, whichever database is behind it.

SQLite: one file in WAL mode. An answered request survives a power cut: the writer commits with
``synchronous=NORMAL`` and every write waits, before it returns, for an ``fdatasync`` of the WAL
made after its COMMIT (``Database._wal_synced``), outside the writer lock. Statements run with
the standard ``sqlite3`` driver directly on the event loop's thread. That is deliberate: an
indexed read in WAL mode takes microseconds and never waits for a writer, while handing each
statement to a driver thread (aiosqlite) cost about 300 µs of CPU per query here, most of the
time of a request. Writers take turns on an ``asyncio.Lock`` (SQLite allows one writer at a
time anyway) and start with ``BEGIN IMMEDIATE``; when another process holds the write lock, we
wait for it with ``asyncio.sleep`` instead of blocking the loop in SQLite's busy handler.
Between processes, writers queue on an ``flock`` of a lock file beside the database, taken in a
thread: the next writer wakes the moment the lock is free, where polling SQLite's lock would
wake on a timer. A group of single statements whose lock is free runs from BEGIN to COMMIT on
the loop, and so does every COMMIT in WAL mode: it only appends to the WAL, in microseconds.
The waits for another process's lock, the syncs and the checkpoints of the WAL run in threads,
so the loop serves other requests meanwhile.

``write(job)`` is group commit: concurrent small write transactions (``/send``'s two writes,
``/send-batch``'s inserts) are run back to back in one transaction and committed together, so
one COMMIT (SQLite) or one BEGIN/COMMIT round trip pair (PostgreSQL) serves all of them; on
SQLite one sync also serves every commit made before it started. Nobody waits for a batch to
fill: a job joins whatever is queued while the previous commit is under way.

PostgreSQL: one asyncpg pool. Reads run in autocommit mode (no BEGIN/COMMIT round trips: each
statement sees a committed snapshot of its own); writes are transactions.
"""

from __future__ import annotations

import asyncio
import fcntl
import itertools
import json
import logging
import math
import operator
import os
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import (
    Any,
    Concatenate,
    Literal,
    ParamSpec,
    TypeVar,
    cast,
)

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Dialect, Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import QueuePool

__all__ = [
    "Connection",
    "Database",
    "DatabaseUrlError",
    "Prefixed",
    "PreparedInsert",
    "PreparedRead",
    "PreparedWrite",
    "normalize_database_url",
]

SQLITE_LOCK_WAIT = 15.0  # seconds another process's write may keep us waiting
SQLITE_LOCK_POLL_MIN = 0.001  # seconds, first pause when the write lock is taken...
SQLITE_LOCK_POLL_MAX = 0.05  # ...doubling up to this
# A reader may meet a lock only in rare moments (a checkpoint resetting the WAL, a file being
# opened): SQLite's own short busy wait is fine there.
SQLITE_READ_BUSY_TIMEOUT = 100  # milliseconds
# Bytes a page, for new database files (SQLite's default). A COMMIT writes every page it
# changed to the WAL whole, and a message's row (~1 KB) changes a page of the table and one of
# each of its indexes: a /send's COMMIT of its row took 43 µs on 4 KiB pages and 100 µs on
# 16 KiB ones (a batch's 100 rows 1.4 ms and 2.0 ms), and at 16 clients /send went 2,020 ->
# 2,350 msg/s.
SQLITE_PAGE_SIZE = 4096
SQLITE_READ_CONNECTIONS = 8  # read transactions open at once in one process
# Connections kept open per process. A request beyond them waits for one to come back instead
# of opening a connection of its own: under a steady load, such overflow connections were opened
# and closed again hundreds of times a second, and PostgreSQL's process per connection made
# that the most expensive part of a request. 20 per process leaves room for several processes
# within PostgreSQL's default max_connections of 100.
POSTGRES_POOL_SIZE = 20
POSTGRES_POOL_OVERFLOW = 0
POOL_TIMEOUT = 60.0  # seconds to wait for a free connection before failing the request
# Connections kept out of the pool between uses (``Database._keep``), at most. On PostgreSQL
# about as many as run at once under load: one for each kind of statement in flight (the reads,
# the inserts, the writes that are grouped). SQLite's reads never need more than one.
KEPT_CONNECTIONS = 4
# Jobs committed together at most: enough to amortise a commit, few enough to keep transactions
# (and the locks they hold on PostgreSQL) short.
GROUP_COMMIT_MAX_JOBS = 64

# SQLite's writers do not checkpoint the WAL at their COMMIT: each process does, in a thread,
# after a sync of the WAL, at most this often. At its default (a COMMIT that leaves 1,000 pages
# or more in the WAL checkpoints), a COMMIT now and then copied the WAL into the database file
# and synced both, with the writer lock held. Under /send at 16 clients that point came several
# times a second; here the interval makes about as many checkpoints, and none of them holds up
# a writer.
SQLITE_CHECKPOINT_INTERVAL = 0.1  # seconds

log = logging.getLogger("mailpass.storage")

# Whether a SQLite connection's COMMIT waits for the disk (in its pool record's ``info``): the
# writer's does not in WAL mode (synchronous=NORMAL, no checkpoints of its own); without a WAL
# (a file system that cannot share memory) it syncs, and runs in a thread.
_COMMIT_SYNCS = "mailpass_commit_syncs"

Dialect_ = Literal["sqlite", "postgresql"]
Statement = sa.Select[Any] | sa.Insert | sa.Update
P = ParamSpec("P")
T = TypeVar("T")
WriteJob = Callable[[AsyncConnection], Awaitable[Any]]


class DatabaseUrlError(ValueError):
    """The configured database URL is not one MailPass can use."""


# What repositories are given. On PostgreSQL it is SQLAlchemy's AsyncConnection; on SQLite a
# _LoopConnection, which implements the part repositories may use: ``execute`` (a buffered
# result), ``run_sync`` and ``dialect``. Typing both as AsyncConnection keeps SQLAlchemy's
# precise result types in every repository.
Connection = AsyncConnection


def normalize_database_url(raw: str) -> URL:
    """Accept ``sqlite:///path`` and ``postgresql://…`` and choose the driver ourselves.

    Users should not need to know driver names; an explicit ``+aiosqlite``/``+pysqlite`` or
    ``+asyncpg`` is accepted as well.
    """
    try:
        url = make_url(raw)
    except Exception as exc:
        raise DatabaseUrlError(f"not a database URL: {raw!r}") from exc
    backend = url.get_backend_name()
    if backend in ("postgres", "postgresql"):
        if url.get_driver_name() not in ("asyncpg", "psycopg2", "psycopg", ""):
            raise DatabaseUrlError(f"unsupported PostgreSQL driver in {raw!r}")
        return url.set(drivername="postgresql+asyncpg")
    if backend == "sqlite":
        if not url.database or url.database == ":memory:":
            raise DatabaseUrlError("SQLite needs a file path, e.g. sqlite:////var/lib/mailpass/db")
        return url.set(drivername="sqlite+pysqlite")
    raise DatabaseUrlError(f"MailPass runs on SQLite or PostgreSQL, not {backend!r}")


def _json_text(value: Any) -> str:
    """JSON columns' serializer: orjson, ~10x the speed of the json module that SQLAlchemy uses
    by default (a message row has six JSON columns). The json module takes what orjson
    refuses (integers beyond 64 bits)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value)


class _LoopConnection:
    """A SQLAlchemy connection used directly on the event loop's thread (SQLite)."""

    def __init__(self, connection: sa.Connection) -> None:
        self._connection = connection

    @property
    def dialect(self) -> Dialect:
        return self._connection.dialect

    def driver_connection(self) -> sqlite3.Connection:
        """The sqlite3 connection underneath, in the same transaction."""
        driver = self._connection.connection.driver_connection
        assert isinstance(driver, sqlite3.Connection)
        return driver

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        result = self._connection.execute(statement, parameters)
        if result.returns_rows:
            # Buffered, like asyncio results: safe to read after the transaction ends. (It is an
            # IteratorResult, not a CursorResult: everything but ``rowcount``, which callers only
            # read from statements that return no rows.)
            return cast(Any, result.freeze()())
        return result

    async def run_sync(
        self, fn: Callable[Concatenate[sa.Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        return fn(self._connection, *args, **kwargs)


Processor = Callable[[Any], Any] | None
_GIVEN: Any = object()  # a statement's parameter whose value the caller gives
_RUN = "mailpass_run"  # the column and parameter of PreparedRead.numbered


def _remembering_last(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``process`` that answers again without calling it when given the very object it was
    given last. For date-times, which are immutable: every row of a batch holds the same
    ``now``, up to three times, and SQLAlchemy's SQLite DATETIME processor formats it anew
    each time (~2 µs, 6 % of a batch's samples on SQLite). And for booleans, whose
    processor checks and converts each value (a batch's rows hold the same ``is_test``)."""
    last: tuple[Any, Any] = (_GIVEN, None)

    def remembered(value: Any) -> Any:
        nonlocal last
        given, processed = last  # one tuple, replaced whole, so a thread sees a matching pair
        if value is given:
            return processed
        processed = process(value)
        last = (value, processed)
        return processed

    return remembered


# The types of the values JSON columns are given in rows (and what they hold).
_PLAIN_JSON_TYPES = frozenset({dict, list, tuple, str, int, float, bool, type(None)})


def _serializing_plain_values(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A JSON column's ``process`` that serializes plain values (``_PLAIN_JSON_TYPES``)
    directly. SQLAlchemy's processor first looks for its NULL markers in each value, through
    two ``isinstance`` calls on its own classes, and a message row has six JSON values: with
    this and the booleans' processor remembered (``_remembering_last``), binding a row on
    PostgreSQL took 2.1 µs instead of 2.7. Any other value still goes through ``process``.
    Only when ``process`` serializes as ``_json_text`` (checked here): a dialect that
    post-processes the text, or a column that stores None as SQL NULL, keeps its own."""
    probes: list[Any] = [None, [], {"a": [1, "b"]}]
    if any(process(probe) != _json_text(probe) for probe in probes):
        return process
    plain = _PLAIN_JSON_TYPES

    def serialized(value: Any) -> Any:
        return _json_text(value) if type(value) in plain else process(value)

    return serialized


@dataclass(frozen=True, slots=True)
class _Compiled:
    """A statement compiled for one dialect, with what turns values into the driver's."""

    sql: str
    # Positional order: name, bind processor, and the value already processed when the statement
    # itself holds it (``.values(status="sent")``), else _GIVEN: the caller gives it by name.
    parameters: tuple[tuple[str, Processor, Any], ...]
    columns: tuple[tuple[str, Processor], ...] = ()  # key and result processor
    # When the caller gives every value (an INSERT's row): one C call picks them all out of
    # the row, and only the values that have a processor go through Python one by one.
    # (About a quarter less time than a comprehension over the 23 values of a message row.)
    pick_all: Callable[[Mapping[str, Any]], Any] | None = None
    processors: tuple[tuple[int, Callable[[Any], Any]], ...] = ()

    @classmethod
    def of(cls, statement: Statement, dialect: Dialect) -> _Compiled:
        compiled = statement.compile(dialect=dialect)
        parameters = []
        for name in compiled.positiontup or []:
            bind = compiled.binds[name]
            process: Processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None and isinstance(bind.type, sa.DateTime | sa.Boolean):
                process = _remembering_last(process)
            elif process is not None and isinstance(bind.type, sa.JSON):
                process = _serializing_plain_values(process)
            if bind.required:
                parameters.append((name, process, _GIVEN))
            else:
                value = bind.effective_value
                parameters.append((name, None, process(value) if process else value))
        names = [name for name, _, fixed in parameters if fixed is _GIVEN]
        every_value_given = len(names) == len(parameters) > 1
        return cls(
            sql=str(compiled),
            parameters=tuple(parameters),
            pick_all=operator.itemgetter(*names) if every_value_given else None,
            processors=tuple(
                (index, process)
                for index, (_, process, _) in enumerate(parameters)
                if process is not None
            ),
            # A SELECT's columns, or what an INSERT or UPDATE returns (RETURNING).
            columns=tuple(
                (str(column.key), column.type.dialect_impl(dialect).result_processor(dialect, None))
                for column in statement.exported_columns
            ),
        )

    def bind(self, values: Mapping[str, Any]) -> list[Any]:
        """``values`` by name as the driver takes them: positional, through bind processors."""
        if self.pick_all is not None:
            bound = list(self.pick_all(values))
            for index, process in self.processors:
                bound[index] = process(bound[index])
            return bound
        return [
            fixed if fixed is not _GIVEN else process(values[name]) if process else values[name]
            for name, process, fixed in self.parameters
        ]

    def rows(self, rows: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
        """The driver's rows as dicts by column key, through the result processors."""
        columns = self.columns
        return [
            {
                key: process(row[index]) if process else row[index]
                for index, (key, process) in enumerate(columns)
            }
            for row in rows
        ]


class _Prepared:
    """A statement built once with SQLAlchemy Core, compiled once per dialect."""

    def __init__(self, statement: Statement) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}

    def compiled_for(self, dialect: Dialect) -> _Compiled:
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            compiled = self._compiled[dialect.name] = _Compiled.of(self.statement, dialect)
        return compiled


class Prefixed:
    """A table's columns named ``<prefix>_<column>``, for a read that joins it to other tables
    without their column names colliding; ``of(row)`` gives them back under their own names."""

    def __init__(self, table: sa.Table, prefix: str) -> None:
        self.columns = tuple(column.label(f"{prefix}_{column.key}") for column in table.c)
        self._names = tuple((f"{prefix}_{column.key}", str(column.key)) for column in table.c)

    def of(self, row: Mapping[str, Any]) -> dict[str, Any]:
        return {name: row[label] for label, name in self._names}


class PreparedRead(_Prepared):
    """A SELECT built once with SQLAlchemy Core and run on the driver itself (``Database.fetch``).

    For the reads every API request makes (its key, its provider, a message's status). Through
    SQLAlchemy's connection a prebuilt statement still cost ~250 µs per query on PostgreSQL
    (a pool checkout with its events, the greenlet bridge, the result machinery) against
    ~130 µs for the same query on asyncpg; on SQLite ~17 µs against ~5 µs. The statement is
    compiled by SQLAlchemy for the dialect, and its values go through the column types' own
    bind and result processors, so what comes back is what SQLAlchemy would have returned.

    On PostgreSQL, runs of the same read made while one is under way go together in the next
    round trip (``Database.fetch``). They are told apart by ``numbered``: the same SELECT with
    one more column, the number of the run each row is of, given as a parameter.
    """

    def __init__(self, statement: sa.Select[Any]) -> None:
        super().__init__(statement)
        self.numbered = _Prepared(
            statement.add_columns(sa.bindparam(_RUN, type_=sa.Integer).label(_RUN))
        )
        self._run_places: dict[str, int] = {}

    def numbered_values(self, dialect: Dialect, values: list[Any], run: int) -> list[Any]:
        """``values`` (bound for the statement itself) with ``run``, for ``numbered``."""
        place = self._run_places.get(dialect.name)
        if place is None:
            names = [name for name, _, _ in self.compiled_for(dialect).parameters]
            numbered = [name for name, _, _ in self.numbered.compiled_for(dialect).parameters]
            place = numbered.index(_RUN)
            # The number is a column at the end of the SELECT list: the other parameters keep
            # their order around it.
            assert numbered[:place] + numbered[place + 1 :] == names, (names, numbered)
            self._run_places[dialect.name] = place
        return [*values[:place], run, *values[place:]]


class PreparedWrite(_Prepared):
    """An INSERT or UPDATE built once, run as a transaction of its own on the driver
    (``Database.write_alone``), for the single-statement writes of ``/send``."""

    def __init__(self, statement: sa.Insert | sa.Update) -> None:
        super().__init__(statement)
        # Rows each run returns, when that is known: then runs of it made at the same time can
        # be sent together and their rows told apart (on PostgreSQL, see Database.write_alone).
        self.rows_each: int | None = (
            0 if not statement.exported_columns else 1 if isinstance(statement, sa.Insert) else None
        )


class PreparedInsert(_Prepared):
    """An INSERT of one row with a fixed set of columns, compiled once, for the hot writes
    (``run``): on SQLite it runs on the driver as one many-row INSERT (``_insert_rows``),
    whose keys are counted back from the last rowid; on PostgreSQL the rows' keys are taken
    from the table's sequence first and the rows go in with them by ``COPY``. ``alone``
    inserts one row as a transaction of its own and returns its key (``Database.write_alone``).

    Through SQLAlchemy, a many-row insert that must return its keys in order ran one
    statement per row anyway on SQLite, after ~80 us of Python per row around it (parameter
    processing, the ordered-RETURNING bookkeeping); on the driver a row costs what SQLite
    itself takes plus its values' bind processors. On PostgreSQL, a row of ``messages`` cost
    the client ~14 us as one statement taking each column's values as an array (``unnest``:
    asyncpg checks every element of an array for a nested one, through two ``isinstance``
    calls on abstract classes), and ~6 us by ``COPY`` (asyncpg's binary format, each value
    through its column's codec). PostgreSQL's own CPU for a batch stayed about the same.
    """

    def __init__(self, table: sa.Table, columns: Sequence[str]) -> None:
        statement = table.insert().values({name: sa.bindparam(name) for name in columns})
        super().__init__(statement)
        self.columns = tuple(columns)
        self._table = table
        (self._key,) = table.primary_key.columns
        self.alone = PreparedWrite(statement.returning(self._key))
        # PostgreSQL: ``$1`` new keys, as one array, from the sequence of the table's serial
        # key. The sequence is looked up once, in a sub-select: as an argument of ``nextval``
        # the lookup ran for every key, and took ~3 us of PostgreSQL's CPU each (~3 of 4 us a
        # key). Only names from the table's own definition go into the text, as literals.
        assert "'" not in table.name + self._key.name
        self._keys_sql = (
            "SELECT array_agg(nextval((SELECT pg_get_serial_sequence("  # noqa: S608
            f"'{table.name}', '{self._key.name}')::regclass))) FROM generate_series(1, $1)"
        )

    async def run(self, connection: Connection, rows: Sequence[dict[str, Any]]) -> list[int]:
        """Insert ``rows`` (each with exactly ``columns``) in the caller's write transaction;
        their primary keys, in the order given."""
        compiled = self.compiled_for(connection.dialect)
        if isinstance(connection, _LoopConnection):  # SQLite
            insert = _Statement(compiled.sql, [compiled.bind(row) for row in rows], keys=True)
            return cast(list[int], insert.run(connection.driver_connection()))
        if not rows:
            return []
        # The statement also begins the transaction that COPY then runs in, on the same
        # connection.
        result = await connection.exec_driver_sql(self._keys_sql, (len(rows),))
        keys = sorted(result.scalar_one())
        asyncpg = (await connection.get_raw_connection()).driver_connection
        await self._copy(asyncpg, compiled, keys, rows)
        return keys

    async def copy(
        self, asyncpg: Any, dialect: Dialect, batches: list[Sequence[dict[str, Any]]]
    ) -> list[list[int]]:
        """PostgreSQL: the rows of ``batches`` by one COPY on ``asyncpg`` in autocommit mode
        (one statement: all of the rows or none); each batch's keys, in order."""
        compiled = self.compiled_for(dialect)
        rows = list(itertools.chain.from_iterable(batches))
        keys = sorted(await asyncpg.fetchval(self._keys_sql, len(rows)) or ())
        await self._copy(asyncpg, compiled, keys, rows)
        ends = list(itertools.accumulate(len(batch) for batch in batches))
        return [keys[end - len(batch) : end] for end, batch in zip(ends, batches, strict=True)]

    async def _copy(
        self, asyncpg: Any, compiled: _Compiled, keys: list[int], rows: Sequence[dict[str, Any]]
    ) -> None:
        # Keys ascend in the order of the rows, as they do when the rows take them from the
        # column's default one by one.
        records = [(key, *compiled.bind(row)) for key, row in zip(keys, rows, strict=True)]
        names = [self._key.name, *(name for name, _, _ in compiled.parameters)]
        await asyncpg.copy_records_to_table(self._table.name, columns=names, records=records)


class Database:
    """The process's database: ``transaction()`` for writes, ``read()`` for reads."""

    def __init__(self, raw_url: str) -> None:
        self.url = normalize_database_url(raw_url)
        self.dialect: Dialect_ = (
            "sqlite" if self.url.get_backend_name() == "sqlite" else "postgresql"
        )
        if self.dialect == "sqlite":
            assert self.url.database is not None
            Path(self.url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            self._sqlite_writer = _sqlite_engine(self.url, begin="BEGIN IMMEDIATE", size=1)
            self._sqlite_readers = _sqlite_engine(
                self.url, begin="BEGIN", size=SQLITE_READ_CONNECTIONS
            )
            self._write_turn = asyncio.Lock()
            self._sqlite_file = Path(self.url.database).expanduser()
            self._writer_lock_path = Path(f"{self._sqlite_file}-writer.lock")
            self._read_places = asyncio.Semaphore(SQLITE_READ_CONNECTIONS)
            # The connection that checkpoints the WAL (``_checkpoint``), made at the first one;
            # the lock keeps ``dispose`` from closing it under a checkpoint.
            self._checkpointer: sqlite3.Connection | None = None
            self._checkpointer_lock = threading.Lock()
            self._checkpointer_closed = False  # by dispose: no checkpoint opens it again
            self._checkpointing: asyncio.Future[None] | None = None
            self._checkpoint_started = -math.inf  # time.monotonic() of the last one
        else:
            self._postgres = create_async_engine(
                self.url,
                pool_size=POSTGRES_POOL_SIZE,
                max_overflow=POSTGRES_POOL_OVERFLOW,
                pool_timeout=POOL_TIMEOUT,
                json_serializer=_json_text,
            )
            self._postgres_reads = self._postgres.execution_options(isolation_level="AUTOCOMMIT")
        self._dialect = (
            self._sqlite_readers.dialect if self.dialect == "sqlite" else self._postgres.dialect
        )
        self._write_jobs: Pending = []
        self._write_flusher: asyncio.Task[None] | None = None
        # SQLite: writers waiting for the WAL to reach the disk after their COMMIT.
        self._wal_waiters: Pending = []
        self._wal_syncer: asyncio.Task[None] | None = None
        # PostgreSQL's fetch, write_alone and insert_alone: what waits for a round trip, by
        # its read, its SQL or its insert.
        self._postgres_pending: dict[Hashable, Pending] = {}
        # Connections out of the pool, kept for the next read (``fetch``) and, on PostgreSQL,
        # the next statement on the driver (``_on_asyncpg``); the last used on top.
        self._kept: list[Any] = []
        self._postgres_flushers: dict[Hashable, asyncio.Task[None]] = {}

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        """A write transaction, committed when the block exits without an exception; on
        SQLite the block's exit also waits until the commit is on disk."""
        async with self._write_transaction() as connection:
            yield connection
        if self.is_sqlite:
            await self._wal_synced()

    @asynccontextmanager
    async def _write_transaction(self) -> AsyncIterator[Connection]:
        """``transaction`` without the wait for the disk on SQLite (``write`` waits itself)."""
        if not self.is_sqlite:
            async with self._postgres.begin() as postgres:
                yield postgres
            return
        async with self._write_turn:
            writer_lock = await self._take_writer_lock()
            unlock_here = True
            try:
                sqlite = await self._begin_sqlite_write()
                try:
                    yield cast(Connection, _LoopConnection(sqlite))
                except BaseException:
                    sqlite.rollback()
                    sqlite.close()
                    raise
                if not sqlite.info.get(_COMMIT_SYNCS, True):
                    # In WAL mode the COMMIT only appends to the WAL: at once, on the loop.
                    unlock_here = False  # _commit_and_unlock closes it
                    _commit_and_unlock(sqlite, writer_lock)
                    return
                # The thread that commits also lets the next writer in, the moment the commit
                # is done: waiting for this loop to come back to it (it may be busy with a
                # whole batch for milliseconds) would keep every other process waiting too.
                committing = asyncio.ensure_future(
                    asyncio.to_thread(_commit_and_unlock, sqlite, writer_lock)
                )
                unlock_here = False  # the thread closes it
                await _uncancellable(committing)
            finally:
                if unlock_here:
                    os.close(writer_lock)  # closing the descriptor releases its flock

    async def write(self, job: Callable[[Connection], Awaitable[T]]) -> T:
        """Run ``job`` in a write transaction that may be shared with other ``write`` calls
        made meanwhile (group commit); returns its result once that transaction is committed.

        A job only touches the database (it may run twice: see below) and reports an expected
        refusal by returning it rather than raising. If any job of a group raises, the group is
        rolled back and each of its jobs runs again in a transaction of its own, so one failing
        job never takes the others down with it.
        """
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._write_jobs.append((job, future))
        if self._write_flusher is None or self._write_flusher.done():
            self._write_flusher = asyncio.create_task(self._flush_writes())
        result = await future
        if self.is_sqlite:
            await self._wal_synced()
        return result

    async def _flush_writes(self) -> None:
        await _flush(self._write_jobs, self._run_jobs)

    async def _run_jobs(self, jobs: list[WriteJob]) -> list[Any]:
        """``jobs`` in one transaction; their results."""
        if self.is_sqlite and all(isinstance(job, _Statement) for job in jobs):
            return await self._sqlite_statements([cast(_Statement, job) for job in jobs])
        results = []
        async with self._write_transaction() as connection:
            for job in jobs:
                results.append(await job(connection))
        return results

    async def fetch(self, read: PreparedRead, **parameters: Any) -> list[dict[str, Any]]:
        """Run a prepared SELECT on a connection of its own; its rows as dicts by column key.

        Each call is one statement, so it sees one committed snapshot on either database.

        On PostgreSQL, runs of ``read`` made while one is under way go together in the next
        round trip (asyncpg's ``fetchmany``, ``read.numbered`` telling their rows apart), as
        ``write_alone`` does with its statements. At 16 clients this took the CPU of a /status
        request 350 -> 249 us in the API processes and 93 -> 49 us in PostgreSQL.
        """
        compiled = read.compiled_for(self._dialect)
        values = compiled.bind(parameters)
        if self.is_sqlite:
            async with self._read_places:
                # As on PostgreSQL (``_on_asyncpg``), the connection is kept for the next read
                # rather than checked in and out of the pool (~14 of a read's ~23 µs). Nothing
                # here waits, so one is enough.
                pooled = self._kept.pop() if self._kept else self._sqlite_readers.raw_connection()
                try:
                    sqlite = pooled.driver_connection
                    assert sqlite is not None
                    rows = sqlite.execute(compiled.sql, values).fetchall()
                except BaseException:
                    pooled.close()
                    raise
                self._keep(pooled)
        else:
            rows = await self._postgres_together(read, values, self._read_runs(read))
        return compiled.rows(rows)

    async def write_alone(self, write: PreparedWrite, **parameters: Any) -> list[dict[str, Any]]:
        """Run a prepared INSERT or UPDATE as a transaction of its own; the rows it returns
        (RETURNING), once it is committed.

        On PostgreSQL it runs on the driver in autocommit mode: one round trip, where a
        transaction through SQLAlchemy takes three (BEGIN, the statement, COMMIT) and its
        Python around them. Runs of the same statement made while one is under way go together
        in the next round trip (asyncpg's ``fetchmany``: one implicit transaction, so all or
        none), and if that fails each runs again alone, as in ``write``. On SQLite it joins
        the group commit of ``write``; a group made only of such statements runs in a thread
        from the writer lock to the COMMIT (``_sqlite_statements``).
        """
        compiled = write.compiled_for(self._dialect)
        values = compiled.bind(parameters)
        if self.is_sqlite:
            rows = await self.write(_Statement(compiled.sql, [values]))
        elif write.rows_each is None:
            rows = await self._postgres_alone(compiled.sql, values)
        else:
            rows = await self._postgres_together(
                compiled.sql, values, self._statement_runs(compiled.sql, write.rows_each)
            )
        return compiled.rows(rows)

    async def insert_alone(
        self, insert: PreparedInsert, rows: Sequence[dict[str, Any]]
    ) -> list[int]:
        """Insert ``rows`` (each with exactly the insert's columns) as one transaction of their
        own; their primary keys, in order.

        On SQLite their values are made the driver's before anything waits for the database,
        and the rows join the group commit as a statement job (in a thread with other such
        writes: the writer lock is held only while SQLite works). On PostgreSQL they go in by
        one COPY in autocommit mode (``PreparedInsert.copy``), with the rows of the other
        inserts made while one is under way, as ``write_alone`` does with its statements: a
        statement, so all of its rows or none, and if it fails each insert runs again alone.
        Three round trips (the keys, the COPY's two) for every batch waiting, where a
        transaction through SQLAlchemy took five for one (BEGIN, the keys, the COPY's two,
        COMMIT), each round trip costing both processes a few system calls. (asyncpg's
        ``fetchmany`` of one INSERT a row had cost twice the CPU of a many-row INSERT for a
        batch of 100.)
        """
        if not self.is_sqlite:

            async def copy(batches: list[Sequence[dict[str, Any]]]) -> list[list[int]]:
                return await self._on_asyncpg(
                    lambda asyncpg: insert.copy(asyncpg, self._dialect, batches)
                )

            return cast(list[int], await self._postgres_together(insert, rows, copy))
        compiled = insert.compiled_for(self._dialect)
        keys = await self.write(
            _Statement(compiled.sql, [compiled.bind(row) for row in rows], keys=True)
        )
        return cast(list[int], keys)

    async def _postgres_together(
        self, key: Hashable, item: Any, run: Callable[[list[Any]], Awaitable[list[Any]]]
    ) -> Any:
        """``item``'s result from ``run``, which takes together every item given for ``key``
        while its previous run was under way (a group, as in ``write``)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        pending = self._postgres_pending.setdefault(key, [])
        pending.append((item, future))
        flusher = self._postgres_flushers.get(key)
        if flusher is None or flusher.done():
            self._postgres_flushers[key] = asyncio.create_task(_flush(pending, run))
        return await future

    def _statement_runs(
        self, sql: str, rows_each: int
    ) -> Callable[[list[list[Any]]], Awaitable[list[list[Any]]]]:
        """``run`` for ``_postgres_together``: ``sql`` once with each item's values, in one
        round trip; the rows of each run."""

        async def run(runs: list[list[Any]]) -> list[list[Any]]:
            if len(runs) == 1:
                return [await self._postgres_alone(sql, runs[0])]
            rows = await self._postgres_many(sql, runs)
            if len(rows) != rows_each * len(runs):
                raise RuntimeError(f"{len(rows)} rows back from {len(runs)} statements")
            return [rows[i * rows_each : (i + 1) * rows_each] for i in range(len(runs))]

        return run

    def _read_runs(
        self, read: PreparedRead
    ) -> Callable[[list[list[Any]]], Awaitable[list[list[Any]]]]:
        """``run`` for ``_postgres_together``: ``read`` once with each item's values, in one
        round trip; the rows of each run."""

        async def run(runs: list[list[Any]]) -> list[list[Any]]:
            if len(runs) == 1:
                return [await self._postgres_alone(read.compiled_for(self._dialect).sql, runs[0])]
            numbered = read.numbered.compiled_for(self._dialect).sql
            rows = await self._postgres_many(
                numbered,
                [read.numbered_values(self._dialect, values, i) for i, values in enumerate(runs)],
            )
            each: list[list[Any]] = [[] for _ in runs]
            for row in rows:
                each[row[-1]].append(row)
            return each

        return run

    async def _postgres_alone(self, sql: str, values: list[Any]) -> list[Any]:
        """One statement on a pooled asyncpg connection, in autocommit mode."""
        return await self._on_asyncpg(lambda asyncpg: asyncpg.fetch(sql, *values))

    async def _postgres_many(self, sql: str, values: list[list[Any]]) -> list[Any]:
        """A statement run once for each of ``values`` in one round trip and one transaction;
        the rows of every run, in order."""
        return await self._on_asyncpg(lambda asyncpg: asyncpg.fetchmany(sql, values))

    async def _on_asyncpg(self, run: Callable[[Any], Awaitable[Any]]) -> list[Any]:
        """``run`` on an asyncpg connection of the pool's.

        The connection goes back to a short list of its own (``_keep``), not to the pool, and
        the next call takes it from there. A checkout from SQLAlchemy's async pool runs in a new
        greenlet, and with the check-in it cost the client more CPU than the statement's own
        round trip: one ``SELECT 1`` at a time took 175 µs through the pool and 80 µs kept. A
        /send on PostgreSQL takes a connection three times, a /status once.
        """
        pooled = self._kept.pop() if self._kept else await self._postgres.raw_connection()
        try:
            asyncpg = pooled.driver_connection
            assert asyncpg is not None
            result = await run(asyncpg)
        except BaseException:
            pooled.invalidate()  # a failed or cancelled query may leave it mid-protocol
            pooled.close()
            raise
        self._keep(pooled)
        return cast(list[Any], result)

    def _keep(self, pooled: Any) -> None:
        """Keep ``pooled``, a connection that has just served a statement well, for the next
        one, or give it back to the pool when ``KEPT_CONNECTIONS`` are kept already."""
        if len(self._kept) < KEPT_CONNECTIONS:
            self._kept.append(pooled)
        else:
            pooled.close()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Connection]:
        """A read-only connection (on SQLite a consistent snapshot for the whole block)."""
        if not self.is_sqlite:
            async with self._postgres_reads.connect() as postgres:
                yield postgres
            return
        async with self._read_places:
            with self._sqlite_readers.connect() as sqlite, sqlite.begin():
                yield cast(Connection, _LoopConnection(sqlite))

    async def _sqlite_statements(self, statements: list[_Statement]) -> list[list[Any]]:
        """Run ``statements`` in one write transaction, from the writer lock to the COMMIT
        without a pause: the other processes wait for as long as a writer holds the lock.
        (Awaiting the loop between the steps kept them waiting for whatever else the loop had
        to do meanwhile: two ``/send`` processes spent most of their time waiting for each
        other's turns.)

        When the lock is free, the whole transaction runs at once on the loop: BEGIN, the
        statements and a COMMIT that writes to the WAL without waiting for the disk
        (``_wal_synced`` does that, in a thread) take tens of microseconds for a ``/send``, and
        the checkpoints that would make a COMMIT long run in a thread instead
        (``_checkpoint_soon``). Handing that work to a thread cost more than doing it: at 16
        clients /send's rate on SQLite went 1,870 -> 2,100 msg/s, its API CPU 848 -> 799 µs a
        message. When another process holds the lock, a thread waits for it and runs the
        transaction, and the loop serves other requests meanwhile.
        """
        turn = _Turn()
        async with self._write_turn:
            fd = os.open(self._writer_lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                results = self._statements_if_free(fd, statements)
            except BaseException:
                os.close(fd)
                raise
            if results is not None:
                os.close(fd)
                return results
            # Another writer: wait in a thread (which closes fd). The flock may be held already
            # (when only SQLite's own lock was taken, by the sqlite3 shell say); taking it
            # again on the same descriptor is then a no-op.
            running = asyncio.ensure_future(
                asyncio.to_thread(self._run_statements, fd, statements, turn)
            )
            try:
                await asyncio.wait_for(asyncio.shield(running), SQLITE_LOCK_WAIT)
            except TimeoutError:
                if turn.give_up():
                    raise _locked_too_long() from None
            except asyncio.CancelledError:
                if turn.give_up():
                    raise
                # It has the lock already: it runs to its end (its COMMIT cannot be stopped
                # halfway), then the cancellation goes on.
                await _uncancellable(running)
                raise
            await _uncancellable(running)  # the same if a cancellation comes from now on
            return cast(list[list[Any]], running.result())

    def _statements_if_free(self, fd: int, statements: list[_Statement]) -> list[list[Any]] | None:
        """``statements`` committed at once when no other writer holds the lock file (``fd``
        is then left holding it) or SQLite's own lock; None, having written nothing, when
        one does."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None
        return self._committed(statements, wait=False)

    def _run_statements(self, fd: int, statements: list[_Statement], turn: _Turn) -> Any:
        """``_sqlite_statements``'s thread. Closes ``fd`` (releasing the writer lock)."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if not turn.start():
                return None  # the caller gave up waiting: touch nothing
            return self._committed(statements, wait=True)
        finally:
            os.close(fd)

    def _committed(self, statements: list[_Statement], *, wait: bool) -> list[list[Any]] | None:
        """BEGIN IMMEDIATE, ``statements``, COMMIT, with the writer lock file held; their
        results. Without ``wait`` (on the loop), None at once if a writer that does not take
        the lock file holds SQLite's lock, or if the COMMIT would wait for the disk."""
        pooled = self._sqlite_writer.raw_connection()
        try:
            sqlite = pooled.driver_connection
            assert isinstance(sqlite, sqlite3.Connection)
            if not wait and pooled.info.get(_COMMIT_SYNCS, True):
                return None
            if not _begin_immediate(sqlite, wait=wait):
                return None
            try:
                results = [job.run(sqlite) for job in statements]
                sqlite.execute("COMMIT")
            except BaseException:
                sqlite.rollback()
                raise
            return results
        finally:
            pooled.close()

    async def _wal_synced(self) -> None:
        """Return once SQLite's WAL is on disk with every commit made before this call.

        The writer commits with ``synchronous=NORMAL`` (``_sqlite_engine``): the COMMIT
        appends to the WAL without waiting for the disk, and lets the next writer in. Before
        its answer, each writer waits here for an ``fdatasync`` of the WAL that started after
        its COMMIT, which makes it durable: what ``synchronous=FULL`` does inside the COMMIT,
        with the writer lock held. One sync serves every commit made before it started, of
        this process or another (the kernel flushes the file, whoever wrote it). Checkpoints
        sync the WAL before copying it into the database file, and the file after, so a
        commit a checkpoint has taken in stays durable too.

        With the sync inside the COMMIT, the COMMIT of a batched row held the lock 23-25 us,
        ~15 us without: two processes' writers waited for each other's syncs.
        """
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._wal_waiters.append((None, future))
        if self._wal_syncer is None or self._wal_syncer.done():
            self._wal_syncer = asyncio.create_task(_flush(self._wal_waiters, self._sync_wal))
        await future

    async def _sync_wal(self, waiters: list[None]) -> list[None]:
        await asyncio.to_thread(_sync_wal_file, self._sqlite_file)
        self._checkpoint_soon()
        return [None] * len(waiters)

    def _checkpoint_soon(self) -> None:
        """Start a checkpoint in a thread, unless one is under way or the last one started
        less than ``SQLITE_CHECKPOINT_INTERVAL`` ago. Nobody waits for it."""
        if self._checkpointing is not None and not self._checkpointing.done():
            return
        now = time.monotonic()
        if now - self._checkpoint_started < SQLITE_CHECKPOINT_INTERVAL:
            return
        self._checkpoint_started = now
        self._checkpointing = asyncio.ensure_future(asyncio.to_thread(self._checkpoint))
        self._checkpointing.add_done_callback(_log_checkpoint_failure)

    def _checkpoint(self) -> None:
        """Copy what the WAL holds into the database file, as far as no reader still needs
        the WAL's older pages (``PASSIVE``: it waits for nobody, and nobody waits for it).
        With ``synchronous=FULL`` it syncs the WAL before and the database file after, so a
        commit it copies stays durable when the WAL starts over."""
        with self._checkpointer_lock:
            if self._checkpointer_closed:
                return
            if self._checkpointer is None:
                self._checkpointer = sqlite3.connect(
                    self._sqlite_file, isolation_level=None, check_same_thread=False
                )
                self._checkpointer.execute("PRAGMA synchronous=FULL")
                self._checkpointer.execute(f"PRAGMA busy_timeout={SQLITE_READ_BUSY_TIMEOUT}")
            self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def _close_checkpointer(self) -> None:
        with self._checkpointer_lock:
            self._checkpointer_closed = True
            if self._checkpointer is not None:
                self._checkpointer.close()
                self._checkpointer = None

    async def _take_writer_lock(self) -> int:
        """Queue behind other processes writing this SQLite file; returns the descriptor whose
        ``flock`` is held (close it to release).

        The flock only orders writers, so that the next one wakes the moment the file is free;
        SQLite's own lock (``BEGIN IMMEDIATE``) still guards the data. Each transaction opens
        its own descriptor: a wait that is given up (cancelled, or past ``SQLITE_LOCK_WAIT``)
        cannot stop its thread, so that thread's descriptor is closed whenever it returns,
        without touching a lock some later transaction holds.
        """
        fd = os.open(self._writer_lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            pass
        except BaseException:
            os.close(fd)
            raise
        waiting = asyncio.ensure_future(asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX))
        try:
            await asyncio.wait_for(asyncio.shield(waiting), SQLITE_LOCK_WAIT)
        except TimeoutError:
            waiting.add_done_callback(lambda _: os.close(fd))
            raise _locked_too_long() from None
        except BaseException:
            waiting.add_done_callback(lambda _: os.close(fd))
            raise
        return fd

    async def _begin_sqlite_write(self) -> sa.Connection:
        """``BEGIN IMMEDIATE``, waiting without blocking the loop while another process writes."""
        deadline = time.monotonic() + SQLITE_LOCK_WAIT
        pause = SQLITE_LOCK_POLL_MIN
        while True:
            connection = self._sqlite_writer.connect()
            try:
                connection.begin()
                return connection
            except OperationalError as exc:
                connection.close()
                if "locked" not in str(exc.orig) or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, SQLITE_LOCK_POLL_MAX)

    async def dispose(self) -> None:
        kept, self._kept = self._kept, []
        for pooled in kept:
            pooled.close()
        if self.is_sqlite:
            self._sqlite_writer.dispose()
            self._sqlite_readers.dispose()
            if self._checkpointing is not None:  # a checkpoint may be opening its connection
                await asyncio.to_thread(self._close_checkpointer)
        else:
            await self._postgres.dispose()


Pending = list[tuple[Any, asyncio.Future[Any]]]  # what waits to be written, and who waits


async def _flush(pending: Pending, run: Callable[[list[Any]], Awaitable[list[Any]]]) -> None:
    """Write what is ``pending``, a group at a time (``run`` takes a group's items together
    and returns one result each), until nothing is; what joins meanwhile goes in the next
    group. If the flushing task itself is cancelled (shutdown), everyone waiting is told."""
    while pending:
        group = pending[:GROUP_COMMIT_MAX_JOBS]
        del pending[:GROUP_COMMIT_MAX_JOBS]
        try:
            await _settle(group, run)
        except BaseException as exc:
            for _item, future in group + pending:
                if not future.done():
                    future.set_exception(exc)
            pending.clear()
            raise


async def _settle(group: Pending, run: Callable[[list[Any]], Awaitable[list[Any]]]) -> None:
    """``run`` the group; if that fails, each item again alone, so that one failing item never
    takes the others down with it. Each waiter gets its own result or exception."""
    try:
        results = await run([item for item, _future in group])
    except Exception as exc:
        if len(group) == 1:
            if not group[0][1].done():
                group[0][1].set_exception(exc)
            return
        for single in group:
            await _settle([single], run)
        return
    for (_item, future), result in zip(group, results, strict=True):
        if not future.done():
            future.set_result(result)


@dataclass(frozen=True, slots=True)
class _Statement:
    """A write job made of statements on the driver: ``sql`` run once with each of ``runs``.
    It returns the rows of its one run, or with ``keys`` the new row id of every run. It runs
    on the loop in a group with other jobs, or, in a group of such jobs only, in a thread
    (``Database._sqlite_statements``)."""

    sql: str
    runs: list[list[Any]]
    keys: bool = False

    def run(self, sqlite: sqlite3.Connection) -> list[Any]:
        if self.keys:
            return _insert_rows(sqlite, self.sql, self.runs)
        (values,) = self.runs
        return sqlite.execute(self.sql, values).fetchall()

    async def __call__(self, connection: Connection) -> list[Any]:
        return self.run(cast(_LoopConnection, connection).driver_connection())


def _insert_rows(sqlite: sqlite3.Connection, sql: str, rows: list[list[Any]]) -> list[int]:
    """Run a one-row ``INSERT ... VALUES (?, ...)`` for every row of ``rows``, as few many-row
    statements as SQLite's limit on bound values allows; the new rows' keys, in order.

    One statement for a whole batch, not one for each row: the sqlite3 module lets go of the
    GIL around every statement, and a thread that must take it back from a busy event loop
    waits up to the switch interval (5 ms) each time, with the writer lock held. Beside a thread
    kept busy, 100 rows took ~600 ms one a statement, and ~40 ms as one statement.

    The keys are counted back from the last one: a table whose key is its rowid gives each
    new row the largest rowid plus one, and no other writer can come between the rows of a
    statement. (SQLite picks at random only once the largest rowid is 2**63 - 1.)
    """
    if not rows:
        return []
    width = len(rows[0])
    head, _, one_row = sql.rpartition(" VALUES ")
    per_statement = max(1, sqlite.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // max(width, 1))
    keys: list[int] = []
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        statement = f"{head} VALUES {', '.join([one_row] * len(chunk))}"
        last = sqlite.execute(statement, [value for row in chunk for value in row]).lastrowid
        if last is None:
            raise RuntimeError("SQLite gave no rowid for an INSERT")
        keys.extend(range(last - len(chunk) + 1, last + 1))
    return keys


class _Turn:
    """Decides, once, between a thread that got the writer lock and starts its transaction and
    a caller that gave up waiting for it: exactly one of them wins."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: Literal["waiting", "started", "given up"] = "waiting"

    def start(self) -> bool:
        with self._lock:
            if self._state == "waiting":
                self._state = "started"
            return self._state == "started"

    def give_up(self) -> bool:
        with self._lock:
            if self._state == "waiting":
                self._state = "given up"
            return self._state == "given up"


def _begin_immediate(sqlite: sqlite3.Connection, *, wait: bool) -> bool:
    """``BEGIN IMMEDIATE``. Other MailPass writers wait on the lock file first; with ``wait``
    (in a thread) this waits for a writer that does not (the sqlite3 shell, a backup), and
    without, it returns False at once when there is one."""
    deadline = time.monotonic() + SQLITE_LOCK_WAIT
    pause = SQLITE_LOCK_POLL_MIN
    while True:
        try:
            sqlite.execute("BEGIN IMMEDIATE")
            return True
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise
            if not wait:
                return False
            if time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, SQLITE_LOCK_POLL_MAX)


def _locked_too_long() -> OperationalError:
    return OperationalError(
        "BEGIN IMMEDIATE",
        None,
        sqlite3.OperationalError(
            f"database is locked: another process has been writing for {SQLITE_LOCK_WAIT:g} s"
        ),
    )


def _commit_and_unlock(sqlite: sa.Connection, writer_lock: int) -> None:
    """COMMIT, then release the writer lock: on the loop when the COMMIT does not wait for
    the disk, in a thread when it does (``_COMMIT_SYNCS``)."""
    try:
        try:
            sqlite.commit()
        except BaseException:
            sqlite.rollback()
            raise
        finally:
            sqlite.close()
    finally:
        os.close(writer_lock)


async def _uncancellable(operation: asyncio.Future[None]) -> None:
    """Wait for ``operation`` even when cancelled meanwhile, then pass the cancellation on:
    a COMMIT in a thread cannot be stopped halfway, and the connection it uses must not be
    touched until it is over."""
    cancelled = False
    while not operation.done():
        try:
            await asyncio.shield(operation)
        except asyncio.CancelledError:
            cancelled = True
    operation.result()
    if cancelled:
        raise asyncio.CancelledError


def _log_checkpoint_failure(checkpoint: asyncio.Future[None]) -> None:
    # Not a write's failure: every commit is in the WAL, synced, and the next checkpoint
    # tries again.
    if not checkpoint.cancelled() and (exc := checkpoint.exception()) is not None:
        log.warning("checkpoint of the SQLite WAL failed: %s", exc)


def _sync_wal_file(database: Path) -> None:
    """``fdatasync`` the WAL of ``database``; the database file itself when it has none (not in
    WAL mode, or the last connection checkpointed and removed it)."""
    try:
        fd = os.open(f"{database}-wal", os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        fd = os.open(database, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fdatasync(fd)
    finally:
        os.close(fd)


def _sqlite_engine(url: URL, *, begin: str, size: int) -> Engine:
    # The pool never makes anyone wait: the lock and the semaphore above hand out places first.
    engine = sa.create_engine(
        url,
        poolclass=QueuePool,
        pool_size=size,
        max_overflow=0,
        pool_timeout=POOL_TIMEOUT,
        connect_args={"check_same_thread": False},
        json_serializer=_json_text,
    )
    # The writer must not sleep inside SQLite (that would stop the event loop): it fails at once
    # and _begin_sqlite_write waits asynchronously.
    busy_timeout = 0 if begin == "BEGIN IMMEDIATE" else SQLITE_READ_BUSY_TIMEOUT

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        # Take transaction control away from the sqlite3 module, whose implicit BEGIN is
        # deferred and issued lazily; we emit our own BEGIN below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # Only takes effect on a new file, before its first table.
        cursor.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
        (journal_mode,) = cursor.execute("PRAGMA journal_mode=WAL").fetchone()
        # The writer's commits are made durable by Database._wal_synced, outside the lock;
        # without a WAL (a file system that cannot share memory), SQLite syncs them itself.
        writer = begin == "BEGIN IMMEDIATE"
        wal = journal_mode.lower() == "wal"
        synchronous = "NORMAL" if writer and wal else "FULL"
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        if writer and wal:
            cursor.execute("PRAGMA wal_autocheckpoint=0")  # Database._checkpoint_soon does
        record.info[_COMMIT_SYNCS] = synchronous == "FULL"
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql(begin)

    return engine
