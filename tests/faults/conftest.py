"""A TCP proxy the test can cut and restore: the database going away and coming back, as a
restart or a failover looks from MailPass, without touching the shared PostgreSQL server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tcp_fixtures import CuttableProxy


@pytest.fixture
async def postgres_proxy(settings, database) -> AsyncIterator[tuple[CuttableProxy, str]]:
    """A proxy in front of the test's PostgreSQL database, and the database URL through it."""
    if database.is_sqlite:
        pytest.skip("a database server to cut off is PostgreSQL's case")
    url = database.url
    proxy = CuttableProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    through = url.set(drivername="postgresql", port=proxy.port)
    try:
        yield proxy, through.render_as_string(hide_password=False)
    finally:
        await proxy.close()
