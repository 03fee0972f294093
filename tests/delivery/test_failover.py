"""Failover on both databases, through real SMTP servers: a provider that cannot take mail (its
server gone, greylisting, marked down, at its limit, stopped in the middle of a drain) hands
it to its fallbacks in order, whose own limits count; the record says who carried it; a 5xx
is never failed over."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from mailpass.clock import utcnow
from mailpass.storage.tables import messages, providers

PROVIDERS = "/api/v1/providers"
SEND = "/api/v1/mail/send"
ITEM = {"to": "ann@example.org", "subject": "Hello", "text": "Hi."}


def smtp_fields(name: str, port: int, **more: Any) -> dict[str, Any]:
    return {
        "name": name,
        "kind": "smtp",
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "from_email": "news@shop.example",
        **more,
    }


async def with_backup(app_client, account, sink, **more: Any) -> dict[str, Any]:
    """Add ``backup`` (at ``sink``) and make it the fallback of the account's provider."""
    answer = await app_client.post(
        PROVIDERS, json=smtp_fields("backup", sink.port, **more), headers=account.headers
    )
    assert answer.status_code == 200, answer.text
    backup = answer.json()["data"]
    answer = await app_client.patch(
        f"{PROVIDERS}/{account.provider.id}",
        json={"fallbacks": [backup["id"]]},
        headers=account.headers,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"]["fallbacks"] == [backup["id"]]
    return backup


async def records(database) -> list[Any]:
    async with database.read() as connection:
        return (
            await connection.execute(
                sa.select(
                    messages.c.status,
                    messages.c.provider_id,
                    messages.c.error_message,
                    messages.c.held_reason,
                ).order_by(messages.c.id)
            )
        ).all()


async def test_a_provider_that_cannot_be_reached_fails_over_in_the_queue(
    app_client, make_account, make_smtp_sink, queue_batch, drain
):
    gone = await make_smtp_sink()
    account = await make_account(sink=gone)
    await gone.stop()  # nothing listens there any more: connection refused
    backup_sink = await make_smtp_sink()
    backup = await with_backup(app_client, account, backup_sink)
    await queue_batch(account, [ITEM] * 3)
    assert await drain() == 0
    assert len(await backup_sink.wait_for(3)) == 3
    for row in await records(app_client.app.state.services.database):
        assert row.status == "sent"
        assert row.provider_id == backup["id"]  # recorded under the one that carried it
        assert row.error_message.startswith("sent through backup, fallback of primary (")
        assert "refused" in row.error_message
    async with app_client.app.state.services.database.read() as connection:
        streak = (
            await connection.execute(
                sa.select(providers.c.failure_streak).where(providers.c.id == account.provider.id)
            )
        ).scalar_one()
    assert streak >= 1  # its own provider's breaker heard of it


async def test_greylisting_fails_over_but_a_5xx_does_not(
    app_client, make_account, make_smtp_sink, queue_batch, drain
):
    primary = await make_smtp_sink(
        data_replies=["451 4.7.1 Greylisted", "550 5.7.1 Rejected by policy"]
    )
    account = await make_account(sink=primary)
    backup_sink = await make_smtp_sink()
    await with_backup(app_client, account, backup_sink)
    await queue_batch(account, [ITEM])
    await drain()
    assert len(await backup_sink.wait_for(1)) == 1
    await queue_batch(account, [ITEM])
    await drain()
    rows = await records(app_client.app.state.services.database)
    assert rows[1].status == "failed"
    assert rows[1].error_message == "550 5.7.1 Rejected by policy"
    assert len(backup_sink.messages) == 1  # the refused message was not handed on


async def test_a_provider_marked_down_hands_its_mail_over_without_being_tried(
    app_client, make_account, make_smtp_sink, queue_batch, drain
):
    primary = await make_smtp_sink()
    account = await make_account(sink=primary)
    backup_sink = await make_smtp_sink()
    await with_backup(app_client, account, backup_sink)
    database = app_client.app.state.services.database
    async with database.transaction() as connection:
        await connection.execute(
            providers.update()
            .where(providers.c.id == account.provider.id)
            .values(down_until=utcnow() + timedelta(minutes=5), down_reason="timed out")
        )
    await queue_batch(account, [ITEM] * 2)
    assert await drain() == 0
    assert len(await backup_sink.wait_for(2)) == 2
    assert primary.connections_opened == 0
    for row in await records(database):
        assert "fallback of primary (provider 'primary' is down until" in row.error_message

    # /send as well: at once, through the fallback.
    answer = await app_client.post(SEND, json=ITEM, headers=account.headers)
    assert answer.status_code == 200, answer.text
    assert len(await backup_sink.wait_for(3)) == 3
    assert primary.connections_opened == 0


async def test_limits_fail_over_and_the_fallbacks_own_limits_count(
    app_client, make_account, make_smtp_sink, queue_batch, drain
):
    primary = await make_smtp_sink()
    account = await make_account(sink=primary, provider_options={"daily_limit": 2})
    backup_sink = await make_smtp_sink()
    backup = await with_backup(app_client, account, backup_sink, daily_limit=1)
    await queue_batch(account, [ITEM] * 5)
    await drain(timeout=2)
    assert len(primary.messages) == 2
    assert len(backup_sink.messages) == 1
    rows = await records(app_client.app.state.services.database)
    statuses = sorted(row.status for row in rows)
    assert statuses == ["queued", "queued", "sent", "sent", "sent"]
    waiting = [row for row in rows if row.status == "queued"]
    for row in waiting:
        assert row.provider_id == account.provider.id  # back under its own provider
        reason = row.held_reason or ""
        assert reason.startswith("primary's limits leave room for 2 more; fallbacks: ")
        assert "backup: the provider's daily limit of 1 message is reached" in reason
    carried = [row for row in rows if row.provider_id == backup["id"]]
    assert len(carried) == 1
    assert "(primary's limits leave room for 2 more)" in carried[0].error_message


async def test_send_fails_over_before_answering(app_client, make_account, make_smtp_sink):
    gone = await make_smtp_sink()
    account = await make_account(sink=gone)
    await gone.stop()
    backup_sink = await make_smtp_sink(data_replies=["250 2.0.0 Ok: queued as B4CKUP"])
    backup = await with_backup(app_client, account, backup_sink)
    answer = await app_client.post(SEND, json=ITEM, headers=account.headers)
    assert answer.status_code == 200, answer.text
    message_id = answer.json()["data"]["message_id"]
    [received] = await backup_sink.wait_for(1)
    assert received.message["Message-ID"] == message_id
    status = await app_client.get(f"/api/v1/mail/status/{message_id}", headers=account.headers)
    record = status.json()["data"]["message"]
    assert record["status"] == "sent"
    assert record["error_message"].startswith("sent through backup, fallback of primary: ")
    rows = await records(app_client.app.state.services.database)
    assert rows[0].provider_id == backup["id"]

    # With every provider unreachable: one clear failure, naming each.
    await backup_sink.stop()
    answer = await app_client.post(SEND, json=ITEM, headers=account.headers)
    assert answer.status_code == 500
    message = answer.json()["error"]["message"]
    assert "primary: " in message
    assert "refused" in message


async def test_stopping_a_provider_mid_drain_loses_nothing(
    app_client, make_account, make_smtp_sink, queue_batch
):
    primary = await make_smtp_sink()
    account = await make_account(sink=primary)
    backup_sink = await make_smtp_sink()
    await with_backup(app_client, account, backup_sink)
    total = 60
    queued = await queue_batch(account, [ITEM] * total)
    ids = {item["message_id"] for item in queued["messages"]}
    services = app_client.app.state.services
    worker = services.worker(concurrency=8)
    running = asyncio.create_task(worker.run())
    try:
        await primary.wait_for(10)
        await primary.stop()  # mid-drain: cut, and nothing listens any more
        deadline = asyncio.get_running_loop().time() + 20
        while True:
            rows = await records(services.database)
            if all(row.status == "sent" for row in rows):
                break
            assert asyncio.get_running_loop().time() < deadline, [r.status for r in rows]
            await asyncio.sleep(0.05)
    finally:
        worker.stop()
        await running
    arrived = [m.message["Message-ID"] for m in primary.messages + backup_sink.messages]
    assert set(arrived) == ids  # every message arrived
    # A send cut in its DATA may have arrived before the cut: at most those in flight twice.
    assert len(arrived) - total <= 8
    assert len(backup_sink.messages) > 0


async def test_fallbacks_are_checked(app_client, make_account, make_smtp_sink):
    sink = await make_smtp_sink()
    account = await make_account(sink=sink)
    other = await make_account("other@example.com", sink=sink)
    own = account.provider.id
    url = f"{PROVIDERS}/{own}"
    for fallbacks, problem in [
        ([own], "cannot be its own fallback"),
        ([other.provider.id], f"no provider {other.provider.id} in this account"),
        ([999999], "no provider 999999"),
    ]:
        answer = await app_client.patch(url, json={"fallbacks": fallbacks}, headers=account.headers)
        assert answer.status_code == 400, answer.text
        assert problem in answer.json()["error"]["details"][0]["message"]
    backup = await with_backup(app_client, account, sink)
    answer = await app_client.patch(
        url, json={"fallbacks": [backup["id"], backup["id"]]}, headers=account.headers
    )
    assert "named twice" in answer.text
    answer = await app_client.patch(url, json={"fallbacks": [1] * 6}, headers=account.headers)
    assert answer.status_code == 400
    # Deleting a fallback takes it off the lists that named it.
    deleted = await app_client.delete(f"{PROVIDERS}/{backup['id']}", headers=account.headers)
    assert deleted.status_code == 200
    answer = await app_client.get(url, headers=account.headers)
    assert answer.json()["data"]["fallbacks"] == []
    # null clears; a new provider may name its fallbacks when added.
    answer = await app_client.post(
        PROVIDERS,
        json=smtp_fields("third", sink.port, fallbacks=[own]),
        headers=account.headers,
    )
    assert answer.json()["data"]["fallbacks"] == [own]
    third = answer.json()["data"]["id"]
    answer = await app_client.patch(
        f"{PROVIDERS}/{third}", json={"fallbacks": None}, headers=account.headers
    )
    assert answer.json()["data"]["fallbacks"] == []
