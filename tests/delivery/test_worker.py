"""The queue worker against real SMTP servers: retries, permanent failures, limits, leases."""

from __future__ import annotations

import asyncio
import base64
from datetime import timedelta

import sqlalchemy as sa

from mailpass.clock import utcnow
from mailpass.delivery.queue import Outcome, OutcomeKind, claim_due_messages, write_outcomes
from mailpass.storage.tables import captured_mail, message_contents, messages

ITEM = {"to": "user@example.com", "subject": "Queued", "text": "hello"}


async def test_queued_mail_is_delivered_exactly_as_composed(
    make_account, smtp_sink, queue_batch, drain, status_of
):
    account = await make_account(sink=smtp_sink)
    data = await queue_batch(
        account,
        [{**ITEM, "to": f"u{i}@example.com", "bcc": ["audit@example.com"]} for i in range(20)],
        from_name="Shop",
    )
    assert await drain() == 0
    assert len(smtp_sink.messages) == 20
    by_id = {m.message["Message-ID"]: m for m in smtp_sink.messages}
    for answer in data["messages"]:
        delivered = by_id[answer["message_id"]]
        assert delivered.rcpt_tos == [answer["to"], "audit@example.com"]
        assert b"audit@example.com" not in delivered.data
        message = await status_of(account, answer["message_id"])
        assert (message["status"], message["attempts"]) == ("sent", 1)
        assert message["sent_at"] is not None
        assert message["next_attempt_at"] is None
    assert smtp_sink.connections_opened <= 4  # pooled, not one connection per message


async def test_451_then_250_is_sent_after_a_retry(
    fast_retries, make_account, make_smtp_sink, queue_batch, drain, status_of
):
    sink = await make_smtp_sink(data_replies=["451 4.3.0 Try again later"])
    account = await make_account(sink=sink)
    data = await queue_batch(account, [ITEM])
    assert await drain() == 0
    message = await status_of(account, data["messages"][0]["message_id"])
    assert (message["status"], message["attempts"]) == ("sent", 2)
    assert len(sink.messages) == 1


async def test_a_retried_attachment_is_the_same_stored_bytes(
    fast_retries, make_account, make_smtp_sink, queue_batch, drain, status_of, database
):
    """A message with a file is stored once, composed; each attempt sends those bytes, and a
    retry neither composes it again nor keeps another copy."""
    sink = await make_smtp_sink(data_replies=["451 4.3.0 Try again later"])
    account = await make_account(sink=sink)
    content = bytes(range(256)) * 400  # 100 KiB
    item = {
        **ITEM,
        "attachments": [{"filename": "a.bin", "content": base64.b64encode(content).decode()}],
    }
    data = await queue_batch(account, [item])

    async def stored() -> tuple[int, bytes]:
        async with database.read() as connection:
            rows = (await connection.execute(sa.select(message_contents.c.raw))).scalars().all()
        return len(rows), rows[0]

    count, before = await stored()
    assert await drain() == 0
    message = await status_of(account, data["messages"][0]["message_id"])
    assert (message["status"], message["attempts"]) == ("sent", 2)
    assert await stored() == (count, before) == (1, before)
    [received] = sink.messages
    assert received.data == before
    [part] = [p for p in received.message.walk() if p.get_filename() == "a.bin"]
    assert part.get_payload(decode=True) == content


async def test_a_transient_failure_stays_visibly_queued(
    make_account, make_smtp_sink, queue_batch, app_client, status_of
):
    sink = await make_smtp_sink(data_replies=["451 4.7.1 Greylisted, come back later"])
    account = await make_account(sink=sink)
    data = await queue_batch(account, [ITEM])
    await app_client.app.state.services.worker().run(until_idle=True)
    message = await status_of(account, data["messages"][0]["message_id"])
    assert message["status"] == "queued"
    assert message["attempts"] == 1
    assert message["error_message"] == "451 4.7.1 Greylisted, come back later"
    assert message["next_attempt_at"] > message["created_at"]  # about a minute later


async def test_550_fails_at_once_with_the_reply(
    fast_retries, make_account, make_smtp_sink, queue_batch, drain, status_of
):
    sink = await make_smtp_sink(data_replies=["550 5.7.1 Rejected by policy"])
    account = await make_account(sink=sink)
    data = await queue_batch(account, [ITEM])
    assert await drain() == 0
    message = await status_of(account, data["messages"][0]["message_id"])
    assert (message["status"], message["attempts"]) == ("failed", 1)
    assert message["error_message"] == "550 5.7.1 Rejected by policy"


async def test_a_connection_dropped_mid_data_is_retried(
    fast_retries, make_account, make_smtp_sink, queue_batch, drain, status_of
):
    sink = await make_smtp_sink(drop_on_data=1)
    account = await make_account(sink=sink)
    data = await queue_batch(account, [ITEM])
    assert await drain() == 0
    message = await status_of(account, data["messages"][0]["message_id"])
    assert (message["status"], message["attempts"]) == ("sent", 2)
    assert len(sink.messages) == 1


async def test_retries_give_up_after_the_configured_time(
    fast_retries, make_account, make_smtp_sink, queue_batch, drain, status_of
):
    # Long enough for a second attempt even when the first fails late on a busy machine (a
    # first attempt that failed more than ~0.25 s after the message was queued left no room for
    # another in 0.3 s).
    fast_retries.retry_give_up_after = 2.0
    # 451 is about this message; a 421 (the server closing) would mark the provider down.
    sink = await make_smtp_sink(data_replies=["451 4.3.0 Try again later"] * 100)
    account = await make_account(sink=sink)
    data = await queue_batch(account, [ITEM])
    assert await drain() == 0
    message = await status_of(account, data["messages"][0]["message_id"])
    assert message["status"] == "failed"
    assert message["attempts"] >= 2
    assert message["error_message"].startswith(f"gave up after {message['attempts']} attempts")
    assert "451 4.3.0 Try again later" in message["error_message"]


async def test_over_the_hourly_limit_mail_waits_and_never_fails(
    make_account, smtp_sink, queue_batch, drain, app_client
):
    account = await make_account(sink=smtp_sink, provider_options={"hourly_limit": 5})
    await queue_batch(account, [{**ITEM, "to": f"u{i}@example.com"} for i in range(8)])
    # The three that found no slot are first put off for a second (the limit's window was not
    # full when they were claimed), then, claimed again, until a slot frees: the drain must last
    # past that second, however slow the machine.
    waiting = await drain(timeout=2.5)
    assert waiting == 3
    assert len(smtp_sink.messages) == 5
    async with app_client.app.state.services.database.read() as connection:
        rows = (await connection.execute(sa.select(messages))).mappings().all()
    held = [row for row in rows if row["status"] == "queued"]
    assert len(held) == 3
    assert all(row["attempts"] == 0 for row in held)
    for row in held:  # due again when the oldest slot of the window frees, about an hour on
        assert timedelta(minutes=59) < row["next_attempt_at"] - utcnow() <= timedelta(hours=1)
    assert not any(row["status"] == "failed" for row in rows)


async def test_a_dead_workers_claims_are_taken_over_after_the_lease(
    make_account, smtp_sink, queue_batch, drain, app_client, status_of
):
    services = app_client.app.state.services
    account = await make_account(sink=smtp_sink)
    data = await queue_batch(account, [ITEM, {**ITEM, "to": "two@example.com"}])
    # A worker claims both and dies without a word.
    async with services.database.transaction() as connection:
        dead_claims = (
            await claim_due_messages(
                connection, limit=10, now=utcnow(), lease=timedelta(minutes=5), skip_locked=False
            )
        ).claims
    assert len(dead_claims) == 2
    # Within the lease nobody else may take them...
    await services.worker().run(until_idle=True)
    assert smtp_sink.messages == []
    message = await status_of(account, data["messages"][0]["message_id"])
    assert message["status"] == "sending"
    # ...after it, any worker does. (The lease is moved into the past rather than waited out: a
    # lease short enough to wait for could run out on a busy machine before the check above.)
    async with services.database.transaction() as connection:
        await connection.execute(
            messages.update().values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )
    assert await drain() == 0
    assert len(smtp_sink.messages) == 2
    # The dead worker's late word changes nothing: its claim token is no longer valid.
    async with services.database.transaction() as connection:
        await write_outcomes(connection, [Outcome(dead_claims[0], OutcomeKind.FAILED, "late")])
    message = await status_of(account, data["messages"][0]["message_id"])
    assert (message["status"], message["error_message"]) == ("sent", None)
    # Nor does it leave a "failed" event in the message's story.
    story = await app_client.get(
        f"/api/v1/mail/status/{data['messages'][0]['message_id']}", headers=account.headers
    )
    assert [e["event_type"] for e in story.json()["data"]["events"]] == ["queued", "sent"]


async def test_test_key_batches_land_in_the_capture_inbox(
    make_account, smtp_sink, queue_batch, drain, app_client, status_of
):
    account = await make_account(sink=smtp_sink, test_key=True)
    data = await queue_batch(account, [ITEM])
    assert await drain() == 0
    assert smtp_sink.messages == []
    message = await status_of(account, data["messages"][0]["message_id"])
    assert message["status"] == "sent"
    async with app_client.app.state.services.database.read() as connection:
        captured = (await connection.execute(sa.select(captured_mail))).mappings().all()
    assert [row["message_id"] for row in captured] == [data["messages"][0]["message_id"]]


async def test_stopping_finishes_sends_in_flight_and_leaves_nothing_claimed(
    make_account, make_smtp_sink, queue_batch, app_client
):
    sink = await make_smtp_sink(delay_data=0.2)
    account = await make_account(sink=sink)
    await queue_batch(account, [{**ITEM, "to": f"u{i}@example.com"} for i in range(30)])
    worker = app_client.app.state.services.worker(concurrency=4)
    running = asyncio.create_task(worker.run())
    await sink.wait_for(2)
    worker.stop()
    await asyncio.wait_for(running, 10)
    async with app_client.app.state.services.database.read() as connection:
        statuses = (await connection.execute(sa.select(messages.c.status))).scalars().all()
    assert "sending" not in statuses
    assert statuses.count("sent") == len(sink.messages)
    assert statuses.count("queued") == 30 - len(sink.messages)


async def test_the_worker_in_serve_starts_on_new_mail_without_waiting_for_a_poll(
    settings, database, make_account, smtp_sink
):
    import httpx

    from mailpass.api.app import create_app

    settings.queue_poll_interval = 30.0  # a poll would never come in time: only a wake-up can
    app = create_app(settings, worker=True)
    account = await make_account(sink=smtp_sink)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        await asyncio.sleep(0.2)  # the worker has looked once and is now waiting
        started = asyncio.get_running_loop().time()
        response = await client.post(
            "/api/v1/mail/send-batch", json={"messages": [ITEM]}, headers=account.headers
        )
        assert response.status_code == 200
        await smtp_sink.wait_for(1, timeout=5)
        assert asyncio.get_running_loop().time() - started < 2.0
