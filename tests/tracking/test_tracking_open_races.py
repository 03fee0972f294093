"""Two server processes recording opens of the same messages at the same time: neither may lose
any (each process has its own recorder and its own connections to the database).

Their writes overlap in most runs, not all: while the first opens were written in the order of
the hits, about half the runs of this test lost a batch to a deadlock."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
import sqlalchemy as sa

from mailpass.accounts import service as accounts
from mailpass.clock import utcnow
from mailpass.storage.database import Database
from mailpass.storage.tables import events, messages
from mailpass.tracking.recorder import Hit, OpenRecorder

MESSAGES = 2000
BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"


async def test_two_processes_recording_first_opens_in_opposite_orders_lose_none(
    database: Database,
) -> None:
    if database.is_sqlite:
        pytest.skip("SQLite has one writer at a time: its transactions cannot wait on each other")
    user = await accounts.create_user(database, "owner@example.com")
    sent_at = utcnow() - timedelta(hours=1)
    rows = [
        {
            "user_id": user.id,
            "message_id": f"<{n}.race@shop.example>",
            "from_email": "sender@shop.example",
            "to_email": f"customer{n}@example.com",
            "cc": [],
            "bcc": [],
            "subject": "Hello",
            "tags": [],
            "user_metadata": {},
            "status": "sent",
            "is_test": False,
            "created_at": sent_at,
            "sent_at": sent_at,
            "tracking_id": f"{n:032x}",
        }
        for n in range(MESSAGES)
    ]
    async with database.transaction() as connection:
        await connection.execute(messages.insert(), rows)
    # The second process: its own database object, so its own connections.
    other = Database(database.url.render_as_string(hide_password=False))
    try:
        first, second = OpenRecorder(database), OpenRecorder(other)
        now = utcnow()
        tracking_ids = [row["tracking_id"] for row in rows]
        # Each takes every first open, one in the order of the messages, the other backwards,
        # and writes them in one transaction.
        for tracking_id in tracking_ids:
            await first.record(tracking_id, Hit("GET", "192.0.2.1", BROWSER, now))
        for tracking_id in reversed(tracking_ids):
            await second.record(tracking_id, Hit("GET", "192.0.2.2", BROWSER, now))
        await asyncio.gather(first.flush(), second.flush())
    finally:
        await other.dispose()

    async with database.read() as connection:
        count = sa.select(sa.func.count())
        recorded = (await connection.execute(count.select_from(events))).scalar()
        unopened = (
            await connection.execute(count.where(messages.c.first_opened_at.is_(None)))
        ).scalar()
    assert (recorded, unopened) == (2 * MESSAGES, 0)
