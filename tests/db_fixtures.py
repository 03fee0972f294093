"""Real databases for the tests: every test that asks for ``database`` runs on SQLite and on
PostgreSQL.

PostgreSQL: one throw-away database per test session (created, migrated, dropped at the end),
emptied between tests. ``MAILPASS_TEST_POSTGRES_URL`` points at the server (default: the local
one); ``MAILPASS_TEST_DATABASES=sqlite`` runs SQLite only, for machines without PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from mailpass.accounts import service as accounts
from mailpass.accounts.models import User
from mailpass.api.app import create_app
from mailpass.config import Settings
from mailpass.providers import service as providers
from mailpass.providers.models import Provider
from mailpass.services import Services
from mailpass.storage.database import Database
from mailpass.storage.migrate import upgrade
from mailpass.storage.tables import metadata
from tcp_fixtures import CuttableProxy

POSTGRES_URL = os.environ.get(
    "MAILPASS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
DATABASES = os.environ.get("MAILPASS_TEST_DATABASES", "sqlite,postgresql").split(",")
TEST_SECRET = "test-instance-secret-0123456789"


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _admin(statement: str) -> None:
    connection = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def downgrade_to(database: Database, revision: str) -> None:
    from alembic import command

    from mailpass.storage.migrate import alembic_config

    async with database.transaction() as connection:
        await connection.run_sync(lambda sync: command.downgrade(alembic_config(sync), revision))


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test session."""
    name = f"mailpass_test_{os.getpid()}_{secrets.token_hex(3)}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)

    async def migrate() -> None:
        database = Database(url)
        await upgrade(database)
        await database.dispose()

    asyncio.run(migrate())
    yield url
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'mailpass.sqlite3'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def settings(database_url: str, tmp_path: Path, smtp_ca_file: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        secret_key=TEST_SECRET,
        smtp_ca_file=Path(smtp_ca_file),
        smtp_timeout=5.0,
    )


async def _empty_tables(database: Database) -> None:
    async with database.transaction() as connection:
        if database.is_sqlite:
            return  # a fresh file per test
        names = ", ".join(table.name for table in metadata.sorted_tables)
        await connection.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture
async def database(settings: Settings) -> AsyncIterator[Database]:
    """The test's database, migrated and empty."""
    database = Database(settings.resolved_database_url)
    await upgrade(database)
    await _empty_tables(database)
    yield database
    await database.dispose()


@pytest.fixture(params=DATABASES)
async def fresh_database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A database of its own, not yet migrated: the test goes down and up its migrations."""
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'mailpass.sqlite3'}")
        try:
            yield database
        finally:
            await database.dispose()
        return
    name = f"mailpass_fresh_{secrets.token_hex(4)}"
    await _admin(f'CREATE DATABASE "{name}"')
    database = Database(
        make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    )
    try:
        yield database
    finally:
        await database.dispose()
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def services(settings: Settings, database: Database) -> AsyncIterator[Services]:
    """The running app's services (the same object the routes use)."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app.state.services


@pytest.fixture
async def app_client(settings: Settings, database: Database) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the real app, started with its lifespan, in this process."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://mailpass.test"
        ) as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


@dataclass
class Account:
    user: User
    key: str
    provider: Provider | None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@pytest.fixture
def make_account(database: Database, settings: Settings):  # type: ignore[no-untyped-def]
    """Create an account with a key and (unless ``sink`` is None) a default provider that points
    at the given SMTP sink."""
    from mailpass.config import load_instance_secret
    from mailpass.providers.secrets import SecretBox

    secret_box = SecretBox(load_instance_secret(settings))

    async def make(
        email: str = "owner@example.com",
        *,
        sink=None,  # type: ignore[no-untyped-def]
        permissions: list[str] | None = None,
        test_key: bool = False,
        provider_options: dict | None = None,  # type: ignore[type-arg]
    ) -> Account:
        user = await accounts.create_user(database, email)
        provider = None
        if sink is not None:
            options = {
                "name": "primary",
                "kind": "smtp",
                "host": "localhost" if getattr(sink, "tls_mode", "none") != "none" else "127.0.0.1",
                "port": sink.port,
                "security": getattr(sink, "tls_mode", "none"),
                "from_email": "sender@shop.example",
                "from_name": "Shop",
                "make_default": True,
            }
            options.update(provider_options or {})
            provider = await providers.add_provider(
                database, secret_box, user, providers.NewProvider(**options)
            )
        created = await accounts.create_key(database, user, permissions=permissions, test=test_key)
        return Account(user=user, key=created.key, provider=provider)

    return make


@pytest.fixture
async def postgres_proxy(settings, database) -> AsyncIterator[tuple[CuttableProxy, str]]:
    """A TCP proxy in front of the test's PostgreSQL database, and the database URL through
    it: the test cuts and restores it, as a restart or a failover looks from MailPass, without
    touching the shared server."""
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
