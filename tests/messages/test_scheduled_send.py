"""Scheduled sending and cancelling: through the real API, the queue and a real SMTP server, on
SQLite and PostgreSQL; and across a killed server process."""

from __future__ import annotations

import asyncio
import email.utils
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest
import sqlalchemy as sa

from mailpass import AsyncClient, NotCancellableError
from mailpass.clock import utcnow
from mailpass.storage.tables import messages
from process_fixtures import free_port, running, wait_healthy, wait_until

SEND = "/api/v1/mail/send"
BATCH = "/api/v1/mail/send-batch"
ITEM = {"to": "user@example.com", "subject": "Your reminder", "text": "Tomorrow at 9"}
LEAD = 1.5  # seconds ahead a test schedules its mail: long enough to look before it is due


def ahead(seconds: float) -> datetime:
    """An aware UTC time ``seconds`` from now, to the second (as the wire carries it)."""
    moment = utcnow().replace(tzinfo=UTC) + timedelta(seconds=seconds)
    return moment.replace(microsecond=0) + timedelta(seconds=1)


def in_tokyo(moment: datetime) -> str:
    """The same instant written with a +09:00 offset, as a client in Japan sends it."""
    return moment.astimezone(timezone(timedelta(hours=9))).isoformat()


async def until(moment: datetime) -> None:
    wait = (moment - datetime.now(UTC)).total_seconds()
    if wait > 0:
        await asyncio.sleep(wait + 0.05)


async def drain(app_client) -> None:
    await app_client.app.state.services.worker().run(until_idle=True)


async def status_of(app_client, account, message_id: str) -> dict:
    answer = await app_client.get(f"/api/v1/mail/status/{message_id}", headers=account.headers)
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]["message"]


async def test_a_scheduled_message_is_sent_at_its_time_not_before(
    app_client, make_account, smtp_sink
):
    account = await make_account(sink=smtp_sink)
    due = ahead(LEAD)
    answer = await app_client.post(
        SEND, json={**ITEM, "scheduled_at": in_tokyo(due)}, headers=account.headers
    )
    assert answer.status_code == 200, answer.text
    data = answer.json()["data"]
    assert data["status"] == "queued"
    assert isinstance(data["queue_id"], int)
    assert data["scheduled_at"] == due.replace(tzinfo=None).isoformat()  # UTC, the seed's form
    assert data["to"] == "user@example.com"
    message = await status_of(app_client, account, data["message_id"])
    assert (message["status"], message["scheduled_at"]) == ("queued", data["scheduled_at"])

    await drain(app_client)  # nothing is due yet
    assert smtp_sink.messages == []
    await until(due)
    await drain(app_client)
    [received] = smtp_sink.messages
    # Its Date is the time it was to be sent, not the time it was accepted.
    assert email.utils.parsedate_to_datetime(received.message["Date"]) == due
    assert received.message["Message-ID"] == data["message_id"]
    assert (await status_of(app_client, account, data["message_id"]))["status"] == "sent"


async def test_a_batch_schedules_every_item_unless_it_says_otherwise(
    app_client, make_account, smtp_sink
):
    account = await make_account(sink=smtp_sink)
    due = ahead(LEAD)
    later = ahead(3600)
    answer = await app_client.post(
        BATCH,
        json={
            "scheduled_at": due.isoformat(),
            "messages": [
                {**ITEM, "to": "a@example.com"},
                {**ITEM, "to": "b@example.com", "scheduled_at": later.isoformat()},
                {**ITEM, "to": "c@example.com", "scheduled_at": "next tuesday"},
            ],
        },
        headers=account.headers,
    )
    data = answer.json()["data"]
    assert (data["queued"], data["failed"]) == (2, 1)
    assert "messages.2.scheduled_at" in data["messages"][2]["error"]
    await drain(app_client)
    assert smtp_sink.messages == []
    await until(due)
    await drain(app_client)
    assert [m.rcpt_tos for m in smtp_sink.messages] == [["a@example.com"]]
    b = await status_of(app_client, account, data["messages"][1]["message_id"])
    assert b["status"] == "queued"
    assert b["scheduled_at"] == later.replace(tzinfo=None).isoformat()


@pytest.mark.parametrize(
    ("scheduled_at", "says"),
    [
        ("tomorrow", "ISO 8601"),
        ("2026-13-01T00:00:00", "ISO 8601"),
        ("+31d", "ISO 8601"),
        ("FAR", "more than 30 days ahead"),
        ("PAST", "is in the past"),
    ],
)
async def test_a_bad_schedule_is_refused(app_client, make_account, smtp_sink, scheduled_at, says):
    account = await make_account(sink=smtp_sink)
    if scheduled_at == "FAR":
        scheduled_at = ahead(31 * 86400).isoformat()
    elif scheduled_at == "PAST":
        scheduled_at = ahead(-3600).isoformat()
    answer = await app_client.post(
        SEND, json={**ITEM, "scheduled_at": scheduled_at}, headers=account.headers
    )
    assert answer.status_code == 400, answer.text
    [detail] = answer.json()["error"]["details"]
    assert detail["field"] == "scheduled_at"
    assert says in detail["message"]


async def test_a_time_just_past_is_sent_now(app_client, make_account, smtp_sink):
    """A client whose clock is a little behind still gets its mail out."""
    account = await make_account(sink=smtp_sink)
    just_past = (utcnow() - timedelta(seconds=20)).isoformat()
    answer = await app_client.post(
        SEND, json={**ITEM, "scheduled_at": just_past}, headers=account.headers
    )
    assert answer.json()["data"]["status"] == "queued"
    await drain(app_client)
    assert len(smtp_sink.messages) == 1


async def test_a_cancelled_message_is_never_sent(app_client, make_account, smtp_sink, database):
    account = await make_account(sink=smtp_sink)
    due = ahead(LEAD)
    answer = await app_client.post(
        SEND, json={**ITEM, "scheduled_at": due.isoformat()}, headers=account.headers
    )
    message_id = answer.json()["data"]["message_id"]
    cancel = f"/api/v1/mail/cancel/{message_id}"
    first = await app_client.post(cancel, headers=account.headers)
    assert first.status_code == 200, first.text
    assert first.json()["data"] == {
        "message_id": message_id,
        "queue_id": answer.json()["data"]["queue_id"],
        "status": "cancelled",
    }
    again = await app_client.post(cancel, headers=account.headers)  # the same answer
    assert again.json()["data"]["status"] == "cancelled"
    message = await status_of(app_client, account, message_id)
    assert (message["status"], message["next_attempt_at"]) == ("cancelled", None)

    await until(due)
    await drain(app_client)
    assert smtp_sink.messages == []
    async with database.read() as connection:
        status = (await connection.execute(sa.select(messages.c.status))).scalar_one()
    assert status == "cancelled"


async def test_only_a_queued_message_of_ones_own_can_be_cancelled(
    app_client, make_account, smtp_sink
):
    alice = await make_account("alice@example.com", sink=smtp_sink)
    mallory = await make_account("mallory@example.com", sink=smtp_sink)
    reader = await make_account("reader@example.com", permissions=["providers"])
    sent = await app_client.post(SEND, json=ITEM, headers=alice.headers)
    sent_id = sent.json()["data"]["message_id"]
    refused = await app_client.post(f"/api/v1/mail/cancel/{sent_id}", headers=alice.headers)
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["code"] == "NOT_CANCELLABLE"
    assert error["details"] == [{"message_id": sent_id, "status": "sent"}]

    scheduled = await app_client.post(
        SEND, json={**ITEM, "scheduled_at": ahead(600).isoformat()}, headers=alice.headers
    )
    scheduled_id = scheduled.json()["data"]["message_id"]
    for account, code in ((mallory, 404), (reader, 403)):
        answer = await app_client.post(
            f"/api/v1/mail/cancel/{scheduled_id}", headers=account.headers
        )
        assert answer.status_code == code, answer.text
    unknown = await app_client.post("/api/v1/mail/cancel/<nope@x.example>", headers=alice.headers)
    assert unknown.json()["error"]["code"] == "NOT_FOUND"
    assert (await status_of(app_client, alice, scheduled_id))["status"] == "queued"


async def test_limits_count_when_it_is_sent_not_when_scheduled(app_client, make_account, smtp_sink):
    account = await make_account(sink=smtp_sink, provider_options={"hourly_limit": 1})
    due = ahead(LEAD)
    scheduled = await app_client.post(
        SEND, json={**ITEM, "scheduled_at": due.isoformat()}, headers=account.headers
    )
    assert scheduled.status_code == 200, scheduled.text
    # The scheduled message holds no slot: the hour's one is free for a send now.
    now = await app_client.post(SEND, json=ITEM, headers=account.headers)
    assert now.status_code == 200, now.text
    await until(due)
    await drain(app_client)
    assert len(smtp_sink.messages) == 1  # the one sent at once
    message = await status_of(app_client, account, scheduled.json()["data"]["message_id"])
    assert message["status"] == "queued"
    assert "hourly limit" in message["held_reason"]


async def test_the_sdk_schedules_and_cancels(app_client, make_account, smtp_sink):
    account = await make_account(sink=smtp_sink)
    transport = httpx.ASGITransport(app=app_client.app)
    async with AsyncClient(
        account.key, base_url="http://mailpass.test", transport=transport
    ) as sdk:
        due = ahead(600)
        scheduled = await sdk.mail.send(**ITEM, scheduled_at=due)
        assert (scheduled.status, scheduled.scheduled_at) == ("queued", due)
        assert scheduled.queue_id is not None
        naive = await sdk.mail.send_batch(messages=[ITEM], scheduled_at=due.replace(tzinfo=None))
        status = await sdk.mail.status(naive.messages[0].message_id)
        assert status.message.scheduled_at == due  # a naive datetime is UTC
        cancelled = await sdk.mail.cancel(scheduled.message_id)
        assert cancelled.status == "cancelled"
        sent = await sdk.mail.send(**ITEM)
        with pytest.raises(NotCancellableError):
            await sdk.mail.cancel(sent.message_id)


@pytest.mark.slow
async def test_a_server_killed_between_schedule_and_send_loses_nothing(
    cli_env, database, make_account, make_smtp_sink
):
    sink = await make_smtp_sink()
    account = await make_account(sink=sink)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {**cli_env, "MAILPASS_QUEUE_POLL_INTERVAL": "0.2"}
    due = ahead(4)
    async with running("serve", "--port", str(port), env=env) as server:
        await wait_healthy(base_url, server)
        async with httpx.AsyncClient(base_url=base_url) as client:
            answer = await client.post(
                SEND, json={**ITEM, "scheduled_at": due.isoformat()}, headers=account.headers
            )
        assert answer.status_code == 200, answer.text
        server.kill()  # SIGKILL: no chance to clean up
        await server.wait()
    assert sink.messages == []
    async with running("serve", "--port", str(port), env=env) as server:
        await wait_healthy(base_url, server)
        await wait_until(lambda: len(sink.messages) == 1, timeout=30)
    [received] = sink.messages
    assert datetime.fromtimestamp(received.received_at, UTC) >= due  # not before its time
    assert received.message["Message-ID"] == answer.json()["data"]["message_id"]
