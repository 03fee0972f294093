"""Statements built once with SQLAlchemy Core, compiled once per dialect, and run on the
driver itself with the column types' own bind and result processors.

``PreparedRead`` for the SELECTs every request makes, ``PreparedWrite`` for single-statement
writes, ``PreparedInsert`` for the hot inserts (a many-row INSERT on SQLite, COPY on
PostgreSQL). ``Database.fetch``, ``execute`` and ``insert`` run them.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from mailpass.storage.connection import Connection, LoopConnection
from mailpass.storage.sqlite_driver import StatementJob
from mailpass.storage.values import remember_last_value, serialize_plain_json

__all__ = [
    "CompiledStatement",
    "PrefixedColumns",
    "PreparedInsert",
    "PreparedRead",
    "PreparedStatement",
    "PreparedWrite",
    "Statement",
]

Statement = sa.Select[Any] | sa.Insert | sa.Update
Processor = Callable[[Any], Any] | None
_GIVEN: Any = object()  # a statement's parameter whose value the caller gives
_RUN = "mailpass_run"  # the column and parameter of PreparedRead.numbered


@dataclass(frozen=True, slots=True)
class CompiledStatement:
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
    def of(cls, statement: Statement, dialect: Dialect) -> CompiledStatement:
        compiled = statement.compile(dialect=dialect)
        parameters = []
        for name in compiled.positiontup or []:
            bind = compiled.binds[name]
            process: Processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None and isinstance(bind.type, sa.DateTime | sa.Boolean):
                process = remember_last_value(process)
            elif process is not None and isinstance(bind.type, sa.JSON):
                process = serialize_plain_json(process)
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


class PreparedStatement:
    """A statement built once with SQLAlchemy Core, compiled once per dialect."""

    def __init__(self, statement: Statement) -> None:
        self.statement = statement
        self._compiled: dict[str, CompiledStatement] = {}

    def compiled_for(self, dialect: Dialect) -> CompiledStatement:
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            compiled = self._compiled[dialect.name] = CompiledStatement.of(self.statement, dialect)
        return compiled


class PrefixedColumns:
    """A table's columns named ``<prefix>_<column>``, for a read that joins it to other tables
    without their column names colliding; ``of(row)`` gives them back under their own names."""

    def __init__(self, table: sa.Table, prefix: str) -> None:
        self.columns = tuple(column.label(f"{prefix}_{column.key}") for column in table.c)
        self._names = tuple((f"{prefix}_{column.key}", str(column.key)) for column in table.c)

    def of(self, row: Mapping[str, Any]) -> dict[str, Any]:
        return {name: row[label] for label, name in self._names}


class PreparedRead(PreparedStatement):
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
        self.numbered = PreparedStatement(
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


class PreparedWrite(PreparedStatement):
    """An INSERT or UPDATE built once, run as a transaction of its own on the driver
    (``Database.execute``), for the single-statement writes of ``/send``."""

    def __init__(self, statement: sa.Insert | sa.Update) -> None:
        super().__init__(statement)
        # Rows each run returns, when that is known: then runs of it made at the same time can
        # be sent together and their rows told apart (on PostgreSQL, see Database.execute).
        self.rows_each: int | None = (
            0 if not statement.exported_columns else 1 if isinstance(statement, sa.Insert) else None
        )


class PreparedInsert(PreparedStatement):
    """An INSERT of one row with a fixed set of columns, compiled once, for the hot writes
    (``run``): on SQLite it runs on the driver as one many-row INSERT (``insert_rows``),
    whose keys are counted back from the last rowid; on PostgreSQL the rows' keys are taken
    from the table's sequence first and the rows go in with them by ``COPY``. ``returning_key``
    is the one-row INSERT returning its key, run as a statement of its own by
    ``Database.execute``.

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
        self.returning_key = PreparedWrite(statement.returning(self._key))
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
        if isinstance(connection, LoopConnection):  # SQLite
            insert = StatementJob(compiled.sql, [compiled.bind(row) for row in rows], keys=True)
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

    async def run_keyed(self, connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
        """Insert ``rows`` that carry their own keys (each with exactly ``columns``, the key
        among them) in the caller's write transaction, begun already: a many-row INSERT on
        SQLite, COPY on PostgreSQL."""
        if not rows:
            return
        compiled = self.compiled_for(connection.dialect)
        values = [compiled.bind(row) for row in rows]
        if isinstance(connection, LoopConnection):  # SQLite
            StatementJob(compiled.sql, values, keys=True).run(connection.driver_connection())
            return
        asyncpg: Any = (await connection.get_raw_connection()).driver_connection
        names = [name for name, _, _ in compiled.parameters]
        await asyncpg.copy_records_to_table(
            self._table.name, columns=names, records=[tuple(row) for row in values]
        )

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
        self,
        asyncpg: Any,
        compiled: CompiledStatement,
        keys: list[int],
        rows: Sequence[dict[str, Any]],
    ) -> None:
        # Keys ascend in the order of the rows, as they do when the rows take them from the
        # column's default one by one.
        records = [(key, *compiled.bind(row)) for key, row in zip(keys, rows, strict=True)]
        names = [self._key.name, *(name for name, _, _ in compiled.parameters)]
        await asyncpg.copy_records_to_table(self._table.name, columns=names, records=records)
