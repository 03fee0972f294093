"""Which failures are a database outage (503, retried) and which are bugs (500, a traceback)."""

from __future__ import annotations

import sqlite3

import asyncpg
import pytest
from sqlalchemy import exc as sa_exc

from mailpass.storage.unavailable import database_unavailable


def wrapped(orig: BaseException) -> sa_exc.DBAPIError:
    """As SQLAlchemy raises a driver's error: wrapped, the driver's as its cause."""
    try:
        try:
            raise orig
        except BaseException as cause:
            raise sa_exc.OperationalError("SELECT 1", None, cause) from cause
    except sa_exc.DBAPIError as error:
        return error


@pytest.mark.parametrize(
    "error",
    [
        wrapped(sqlite3.OperationalError("database or disk is full")),
        wrapped(sqlite3.OperationalError("disk I/O error")),
        wrapped(sqlite3.OperationalError("database is locked")),
        ConnectionRefusedError(111, "Connection refused"),
        ConnectionResetError("reset by peer"),
        TimeoutError(),
        sa_exc.TimeoutError("QueuePool limit of size 20 overflow 0 reached"),
        wrapped(asyncpg.exceptions.ConnectionDoesNotExistError("closed in the middle")),
        wrapped(asyncpg.exceptions.CannotConnectNowError("the database system is starting up")),
        wrapped(asyncpg.exceptions.AdminShutdownError("terminating connection")),
        wrapped(asyncpg.exceptions.DiskFullError("could not extend file")),
        sa_exc.OperationalError("UPDATE", None, ConnectionRefusedError("down")),  # no cause
    ],
)
def test_an_outage_is_told_with_its_reason(error: BaseException) -> None:
    assert database_unavailable(error)


@pytest.mark.parametrize(
    "error",
    [
        KeyError("a bug"),
        ValueError("a bug"),
        FileNotFoundError(2, "No such file or directory"),
        wrapped(sqlite3.OperationalError("no such table: messages")),
        wrapped(asyncpg.exceptions.UndefinedColumnError("column x does not exist")),
        sa_exc.IntegrityError("INSERT", None, sqlite3.IntegrityError("UNIQUE constraint failed")),
    ],
)
def test_a_bug_is_not_an_outage(error: BaseException) -> None:
    assert database_unavailable(error) is None
