"""The dispatcher's places, on both databases: an endpoint that never answers in time holds
no more than its share of them, and the deliveries to every other endpoint go on meanwhile
rather than waiting for its timeouts."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from mailpass.config import Settings
from mailpass.storage.database import Database
from mailpass.storage.tables import webhook_deliveries
from mailpass.webhooks.dispatcher import WebhookDispatcher

TIMEOUT = 3.0  # seconds the dispatcher waits for an answer
EACH = 12  # test events queued for each endpoint


async def test_a_hung_endpoint_holds_up_only_its_own_deliveries(
    app_client, make_account, webhook_receiver, database, settings: Settings
):
    account = await make_account(permissions=["mail", "webhooks"])
    hung = webhook_receiver([], delays=[TIMEOUT + 2] * EACH)
    quick = webhook_receiver([])
    ids = {}
    for name, receiver in (("hung", hung), ("quick", quick)):
        answer = await app_client.post(
            "/api/v1/webhooks", json={"url": receiver.url}, headers=account.headers
        )
        ids[name] = answer.json()["data"]["id"]
    webhooks = app_client.app.state.services.webhooks
    for _ in range(EACH):  # the hung endpoint's first, so that they are the oldest due
        assert await webhooks.send_test(account.user.id, ids["hung"])
    for _ in range(EACH):
        assert await webhooks.send_test(account.user.id, ids["quick"])

    dispatcher = WebhookDispatcher(
        settings.model_copy(update={"webhooks_allow_private": True, "webhook_timeout": TIMEOUT}),
        database,
        webhooks.secrets,
        concurrency=4,
        per_endpoint=2,
    )
    running = asyncio.create_task(dispatcher.run())
    try:
        while len(quick.received) < EACH and not running.done():
            await asyncio.sleep(0.02)
        # Every quick delivery made it before a single attempt at the hung endpoint ended.
        async with database.read() as connection:
            tried = (
                await connection.execute(
                    sa.select(sa.func.count())
                    .select_from(webhook_deliveries)
                    .where(
                        webhook_deliveries.c.endpoint_id == ids["hung"],
                        webhook_deliveries.c.attempts > 0,
                    )
                )
            ).scalar_one()
        assert len(quick.received) == EACH
        assert tried == 0
        assert hung.busiest == 2  # its share of the places, never more
        assert len(hung.received) == 2
    finally:
        dispatcher.stop()
        await running  # lets the two hung attempts time out, and notes them
        await dispatcher.close()

    log = await app_client.get(
        f"/api/v1/webhooks/{ids['hung']}/deliveries", headers=account.headers
    )
    attempted = [d for d in log.json()["data"]["deliveries"] if d["attempts"]]
    assert len(attempted) == 2
    assert all(d["state"] == "pending" for d in attempted)
    assert all(d["last_error"] == f"no answer within {TIMEOUT:g} s" for d in attempted)
    quick_log = await app_client.get(
        f"/api/v1/webhooks/{ids['quick']}/deliveries", headers=account.headers
    )
    assert {d["state"] for d in quick_log.json()["data"]["deliveries"]} == {"delivered"}


async def test_a_stop_while_the_database_is_away_does_not_wait_for_it(
    app_client, make_account, webhook_receiver, settings: Settings, postgres_proxy
):
    """The attempt in flight ends, cannot be noted, and the dispatcher stops anyway; the
    database back, the delivery is still pending (to be made again once its claim is over)."""
    proxy, url = postgres_proxy
    account = await make_account(permissions=["mail", "webhooks"])
    endpoint = webhook_receiver([], delays=[1.0])
    answer = await app_client.post(
        "/api/v1/webhooks", json={"url": endpoint.url}, headers=account.headers
    )
    endpoint_id = answer.json()["data"]["id"]
    webhooks = app_client.app.state.services.webhooks
    assert await webhooks.send_test(account.user.id, endpoint_id)

    cut_off = Database(url)
    dispatcher = WebhookDispatcher(
        settings.model_copy(update={"webhooks_allow_private": True}),
        cut_off,
        webhooks.secrets,
    )
    running = asyncio.create_task(dispatcher.run())
    try:
        while not endpoint.received:
            await asyncio.sleep(0.02)
        await proxy.cut()  # while the endpoint takes its time to answer
        dispatcher.stop()
        await asyncio.wait_for(running, 15)
    finally:
        running.cancel()
        await dispatcher.close()
        await proxy.restore()
        await cut_off.dispose()
    path = f"/api/v1/webhooks/{endpoint_id}/deliveries"
    log = await app_client.get(path, headers=account.headers)
    (delivery,) = log.json()["data"]["deliveries"]
    assert (delivery["state"], delivery["attempts"]) == ("pending", 0)
