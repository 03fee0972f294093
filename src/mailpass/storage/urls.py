"""Which database a URL names, with the driver MailPass chooses for it."""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url

__all__ = ["DatabaseUrlError", "normalize_database_url"]


class DatabaseUrlError(ValueError):
    """The configured database URL is not one MailPass can use."""


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
