"""Helpers for tracking tests: send through the real API to a real SMTP server, read the mail
that arrived, and follow its pixel and links through the real app."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from tracking_helpers import PUBLIC_URL

from mailpass.storage.tables import messages


@pytest.fixture
def settings(settings):
    """The instance is reachable from the outside world at PUBLIC_URL."""
    settings.public_url = PUBLIC_URL + "/"
    return settings


@pytest.fixture
def send(app_client):
    async def send(account, **fields):
        response = await app_client.post("/api/v1/mail/send", json=fields, headers=account.headers)
        assert response.status_code == 200, response.text
        return response.json()["data"]["message_id"]

    return send


@pytest.fixture
def opens_written(app_client):
    """Wait until the opens the app has taken are written (they are written after the image
    is answered)."""

    async def flush():
        await app_client.app.state.services.tracking.opens.flush()

    return flush


@pytest.fixture
def status_of(app_client, opens_written):
    """The message's status, read once the opens already taken are written: what a client sees
    a moment later. Its ``events`` are the opens and clicks only: the delivery events before
    them (``sent``, …) are the delivery tests' (tests/delivery/test_delivery_events.py)."""

    async def status(account, message_id):
        await opens_written()
        response = await app_client.get(
            f"/api/v1/mail/status/{message_id}", headers=account.headers
        )
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        data["events"] = [e for e in data["events"] if e["event_type"] in ("open", "click")]
        return data

    return status


@pytest.fixture
def delivered_long_ago(database):
    """Pretend the message left ten minutes ago, as when a person opens it later on."""

    async def backdate(message_id, minutes=10):
        async with database.transaction() as connection:
            row = messages.c.message_id == message_id
            sent_at = (
                await connection.execute(sa.select(messages.c.sent_at).where(row))
            ).scalar_one()
            await connection.execute(
                messages.update().where(row).values(sent_at=sent_at - timedelta(minutes=minutes))
            )

    return backdate


@pytest.fixture
def raw_messages(database):
    async def rows():
        async with database.read() as connection:
            return (await connection.execute(sa.select(messages))).mappings().all()

    return rows
