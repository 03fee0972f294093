"""Telling "the database cannot be reached or cannot take writes right now" apart from a bug.

The first is an outage (PostgreSQL restarting or failing over, a refused or dropped connection,
an exhausted pool, a full disk, SQLite's file locked too long): it ends by itself, so the API
answers 503 SERVICE_UNAVAILABLE with Retry-After and the workers retry. Anything else is a bug,
answered 500 and logged with its traceback.
"""

from __future__ import annotations

import errno
import socket
import sqlite3
from collections.abc import Iterator

import asyncpg
from sqlalchemy import exc as sa_exc

__all__ = ["database_unavailable", "duplicate_key"]

# SQLite's words for an outage: a full disk, the file gone or unreadable, a lock held too long.
SQLITE_OUTAGES = (
    "database or disk is full",
    "disk i/o error",
    "unable to open database file",
    "database is locked",
)
NETWORK_ERRNOS = frozenset({errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN})
ASYNCPG_OUTAGES = (
    asyncpg.PostgresConnectionError,  # class 08: connection failures
    asyncpg.InsufficientResourcesError,  # class 53: disk full, too many connections
    asyncpg.exceptions.OperatorInterventionError,  # class 57: shutting down, starting up
    asyncpg.InterfaceError,  # the connection closed under a query
)


def database_unavailable(error: BaseException) -> str | None:
    """A short reason when ``error`` (or what caused it) says the database is unreachable or
    cannot take writes right now; None when it is anything else."""
    for current in _causes(error):
        reason = _outage_reason(current)
        if reason is not None:
            return reason
    return None


# A unique constraint's refusal, from SQLAlchemy, the SQLite driver or asyncpg beneath.
DUPLICATE_ERRORS = (sa_exc.IntegrityError, sqlite3.IntegrityError, asyncpg.UniqueViolationError)


def duplicate_key(error: BaseException) -> bool:
    """Whether ``error`` (or what caused it) is a unique constraint's refusal."""
    return any(isinstance(current, DUPLICATE_ERRORS) for current in _causes(error))


def _causes(error: BaseException) -> Iterator[BaseException]:
    """``error``, then what caused it, through chained exceptions and the drivers' own."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        orig = current.orig if isinstance(current, sa_exc.DBAPIError) else None
        current = current.__cause__ or current.__context__ or orig


def _outage_reason(error: BaseException) -> str | None:
    if isinstance(error, sa_exc.TimeoutError):  # the pool had no connection to give
        return "no database connection is free"
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return "the connection to the database was lost"
    if isinstance(error, ASYNCPG_OUTAGES):
        return f"PostgreSQL: {error}"
    if isinstance(error, sqlite3.OperationalError):
        text = str(error).lower()
        if any(outage in text for outage in SQLITE_OUTAGES):
            return f"SQLite: {error}"
        return None
    if isinstance(error, ConnectionError | TimeoutError | socket.gaierror) or (
        isinstance(error, OSError) and error.errno in NETWORK_ERRNOS
    ):
        return f"cannot reach the database: {str(error) or type(error).__name__}"
    return None
