"""The API in a database outage: 503 SERVICE_UNAVAILABLE with Retry-After, never a 500 and a
traceback per request; nothing handed to a provider before its row is written; and once a
provider has taken a message, the answer is ``sent`` even if the database cannot note it yet."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from mailpass.api.app import create_app
from mailpass.messages import repository
from mailpass.storage.tables import messages

ITEM = {"to": "user@example.com", "subject": "Hi", "text": "Hello"}


@pytest.fixture
async def app_through_proxy(settings, postgres_proxy):
    """The app, its database reached through the proxy the test cuts."""
    proxy, url = postgres_proxy
    app = create_app(settings.model_copy(update={"database_url": url}))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        yield proxy, client


async def test_requests_in_a_database_outage_are_503_and_send_nothing(
    app_through_proxy, make_account, smtp_sink, caplog
):
    proxy, client = app_through_proxy
    account = await make_account(sink=smtp_sink)
    assert (await client.post("/api/v1/mail/send", json=ITEM, headers=account.headers)).is_success
    await proxy.cut()
    with caplog.at_level(logging.INFO, logger="mailpass"):
        answers = [
            await client.post("/api/v1/mail/send", json=ITEM, headers=account.headers),
            await client.post(
                "/api/v1/mail/send",
                json=ITEM,
                headers={**account.headers, "Idempotency-Key": "order-7"},
            ),
            await client.post(
                "/api/v1/mail/send-batch", json={"messages": [ITEM]}, headers=account.headers
            ),
            await client.get("/api/v1/mail/status/<nope@x>", headers=account.headers),
        ]
    for answer in answers:
        assert answer.status_code == 503, answer.text
        assert answer.headers["retry-after"] == "5"
        assert answer.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert len(smtp_sink.messages) == 1  # the one before the outage
    # One line for the outage, no traceback per request.
    unavailable = [r for r in caplog.records if "the database is unavailable" in r.getMessage()]
    assert len(unavailable) == 1
    assert not any(r.exc_info for r in caplog.records if r.name.startswith("mailpass.api"))

    await proxy.restore()
    await asyncio.sleep(0.1)
    again = await client.post(
        "/api/v1/mail/send", json=ITEM, headers={**account.headers, "Idempotency-Key": "order-7"}
    )
    assert again.status_code == 200, again.text  # the key was let go: the retry ran
    assert len(smtp_sink.messages) == 2


async def test_a_sent_message_is_answered_sent_when_its_mark_waits_for_the_database(
    app_client, make_account, smtp_sink, monkeypatch, database
):
    account = await make_account(sink=smtp_sink)
    real_mark_sent = repository.mark_sent
    refusals = 0

    async def database_away(*args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal refusals
        if refusals < 2:
            refusals += 1
            raise OperationalError("UPDATE", None, ConnectionRefusedError("database is down"))
        return await real_mark_sent(*args, **kwargs)

    monkeypatch.setattr(repository, "mark_sent", database_away)
    answer = await app_client.post("/api/v1/mail/send", json=ITEM, headers=account.headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"]["status"] == "sent"
    assert len(smtp_sink.messages) == 1
    late = app_client.app.state.services.mail.late_outcomes
    assert late.pending == 1
    for _ in range(50):  # written once the database takes it (two more tries here)
        if late.pending == 0:
            break
        await asyncio.sleep(0.1)
    async with database.read() as connection:
        status = (await connection.execute(sa.select(messages.c.status))).scalar_one()
    assert status == "sent"
    assert refusals == 2


async def test_a_bug_is_still_a_500_with_its_traceback(
    app_client, make_account, smtp_sink, monkeypatch, caplog
):
    account = await make_account(sink=smtp_sink)

    async def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise KeyError("a bug, not an outage")

    monkeypatch.setattr("mailpass.messages.service.repository.store_message", broken)
    with caplog.at_level(logging.ERROR, logger="mailpass.api"):
        answer = await app_client.post("/api/v1/mail/send", json=ITEM, headers=account.headers)
    assert answer.status_code == 500
    assert answer.json()["error"]["code"] == "INTERNAL_ERROR"
    assert any(r.exc_info for r in caplog.records)
    assert smtp_sink.messages == []
