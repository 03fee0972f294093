"""The pixel is answered before its open is written; the open is written all the same, and a
database that falls behind holds requests back instead of piling up hits."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import httpx
import pytest
import sqlalchemy as sa
from tracking_helpers import BROWSER, TRACK_BOTH, html_of, read_html, tracking_path

from mailpass.api.app import create_app
from mailpass.storage.database import Database
from mailpass.storage.tables import events
from mailpass.tracking import recorder

HTML = "<html><body><p>Hello</p></body></html>"


@asynccontextmanager
async def writes_blocked(database: Database) -> AsyncIterator[None]:
    """Another client holds what an open's write needs until the block ends."""
    url = database.url
    if database.is_sqlite:
        assert url.database is not None
        other = sqlite3.connect(url.database, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # SQLite's write lock
        try:
            yield
        finally:
            other.rollback()
            other.close()
        return
    other_pg = await asyncpg.connect(
        host=url.host,
        port=url.port,
        user=url.username,
        password=url.password,
        database=url.database,
    )
    transaction = other_pg.transaction()
    await transaction.start()
    await other_pg.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
    try:
        yield
    finally:
        await transaction.rollback()
        await other_pg.close()


async def open_events(database: Database) -> int:
    async with database.read() as connection:
        counted = await connection.execute(sa.select(sa.func.count()).select_from(events))
        return int(counted.scalar_one())


@pytest.fixture
async def pixel(app_client, make_account, smtp_sink, send, delivered_long_ago):
    account = await make_account(sink=smtp_sink, provider_options=TRACK_BOTH)
    message_id = await send(account, to="user@example.com", subject="Hi", html=HTML)
    await delivered_long_ago(message_id)
    return tracking_path(read_html(html_of(smtp_sink.messages[0])).images[0])


async def test_the_image_is_answered_while_its_open_waits_for_the_database(
    app_client, database, pixel, opens_written
):
    async with writes_blocked(database):
        answered = await asyncio.wait_for(
            app_client.get(pixel, headers={"User-Agent": BROWSER}), timeout=10
        )
        assert answered.status_code == 200
        assert answered.content.startswith(b"GIF89a")
        await asyncio.sleep(0.2)  # the write has started and is waiting
    await opens_written()
    assert await open_events(database) == 1


async def test_a_database_that_falls_behind_holds_new_hits_back(
    app_client, database, pixel, opens_written, monkeypatch
):
    monkeypatch.setattr(recorder, "MAX_BACKLOG", 3)
    headers = {"User-Agent": BROWSER}
    async with writes_blocked(database):
        # The first hit's write is under way (and stuck); three more are the backlog.
        for _ in range(4):
            answered = await asyncio.wait_for(app_client.get(pixel, headers=headers), timeout=10)
            assert answered.status_code == 200
            await asyncio.sleep(0.05)
        held = asyncio.ensure_future(app_client.get(pixel, headers=headers))
        done, _ = await asyncio.wait([held], timeout=0.5)
        assert not done  # a fifth would exceed the backlog: it waits for the database
    answered = await asyncio.wait_for(held, timeout=20)
    assert answered.status_code == 200
    await opens_written()
    assert await open_events(database) == 5


async def test_opens_taken_are_written_when_the_server_stops(
    settings, database, make_account, smtp_sink, delivered_long_ago
):
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://mailpass.test"
        ) as client:
            account = await make_account(sink=smtp_sink, provider_options=TRACK_BOTH)
            sent = await client.post(
                "/api/v1/mail/send",
                json={"to": "user@example.com", "subject": "Hi", "html": HTML},
                headers=account.headers,
            )
            message_id = sent.json()["data"]["message_id"]
            await delivered_long_ago(message_id)
            pixel = tracking_path(read_html(html_of(smtp_sink.messages[0])).images[0])
            async with writes_blocked(database):
                answered = await client.get(pixel, headers={"User-Agent": BROWSER})
                assert answered.status_code == 200
        # The lifespan ends here: the server writes the open it holds before it stops.
    assert await open_events(database) == 1
