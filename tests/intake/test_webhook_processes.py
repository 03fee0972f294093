"""The webhook dispatcher as users run it, inside `mailpass worker`: killed with SIGKILL while
a delivery is in flight, nothing is lost; the restarted worker delivers it again, with the same
``webhook-id``, once the dead one's claim is over."""

from __future__ import annotations

import asyncio
import signal

import pytest

from process_fixtures import running

pytestmark = pytest.mark.slow


async def test_kill_9_mid_delivery_loses_no_event(
    cli_env, app_client, make_account, smtp_sink, webhook_receiver
):
    endpoint = webhook_receiver([], delays=[5.0])  # the first POST hangs past the kill
    account = await make_account(sink=smtp_sink, permissions=["mail", "webhooks"])
    created = await app_client.post(
        "/api/v1/webhooks", json={"url": endpoint.url}, headers=account.headers
    )
    assert created.status_code == 200, created.text
    sent = await app_client.post(
        "/api/v1/mail/send",
        json={"to": "user@example.com", "subject": "Hi", "text": "Hello"},
        headers=account.headers,
    )
    assert sent.status_code == 200, sent.text
    env = {
        **cli_env,
        "MAILPASS_WEBHOOK_TIMEOUT": "1",  # a claim lasts 3 x 1 + 5 = 8 seconds
        "MAILPASS_WEBHOOKS_ALLOW_PRIVATE": "1",
    }
    async with running("worker", env=env) as worker:
        for _ in range(200):
            if endpoint.received:
                break
            await asyncio.sleep(0.05)
        assert len(endpoint.received) == 1  # in flight
        worker.send_signal(signal.SIGKILL)
        await worker.wait()
    started = asyncio.get_running_loop().time()
    async with running("worker", env=env):
        for _ in range(400):
            if len(endpoint.received) >= 2:
                break
            await asyncio.sleep(0.05)
        took = asyncio.get_running_loop().time() - started
    assert len(endpoint.received) == 2, "the restarted worker did not deliver it again"
    (first, body_1), (again, body_2) = endpoint.received
    assert first["webhook-id"] == again["webhook-id"]
    assert body_1 == body_2
    assert took < 15
    deliveries = await app_client.get(
        f"/api/v1/webhooks/{created.json()['data']['id']}/deliveries", headers=account.headers
    )
    (delivery,) = deliveries.json()["data"]["deliveries"]
    assert delivery["state"] == "delivered"
