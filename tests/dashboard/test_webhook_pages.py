"""Dashboard > Webhooks: add an endpoint (its secret shown once), send it a test event that a
real HTTP server receives, see the delivery log, turn a disabled one on again, remove it."""

from __future__ import annotations

import re

import sqlalchemy as sa

import mailpass.webhooks
from mailpass.storage.tables import webhook_endpoints


async def dispatch(app_client) -> None:  # type: ignore[no-untyped-def]
    dispatcher = app_client.app.state.services.webhooks.dispatcher()
    try:
        await dispatcher.run(until_idle=True)
    finally:
        await dispatcher.close()


async def test_an_endpoint_is_added_tested_logged_and_removed(
    signed_in, app_client, webhook_receiver, settings, database
):
    app_client.app.state.services.webhooks.settings = settings.model_copy(
        update={"webhooks_allow_private": True}
    )
    endpoint = webhook_receiver([503])
    browser, _ = await signed_in()

    refused = await browser.post("/dashboard/webhooks", {"url": "ftp://nope.example/"})
    assert refused.status_code == 400
    assert "must be http:// or https://" in refused.text

    added = await browser.post(
        "/dashboard/webhooks", {"url": endpoint.url, "event_types": ["bounced", "complained"]}
    )
    assert added.status_code == 200
    secret = re.search(r'value="(whsec_[^"]+)"', added.text)
    assert secret is not None
    page = await browser.get("/dashboard/webhooks")
    assert endpoint.url in page.text
    assert "bounced, complained" in page.text
    assert secret.group(1) not in page.text  # shown once only

    async with database.read() as connection:
        endpoint_id = (await connection.execute(sa.select(webhook_endpoints.c.id))).scalar_one()
    tested = await browser.post("/dashboard/webhooks/test", {"id": str(endpoint_id)})
    assert tested.status_code == 303
    await dispatch(app_client)  # the endpoint answers 503 first
    log = await browser.get(tested.headers["location"])
    assert "Test event queued" in log.text
    assert "HTTP 503" in log.text
    assert "pending" in log.text

    async with database.transaction() as connection:
        await connection.execute(
            sa.text("UPDATE webhook_deliveries SET next_attempt_at = created_at")
        )
    await dispatch(app_client)
    log = await browser.get(f"/dashboard/webhooks/{endpoint_id}")
    assert "delivered" in log.text
    headers, body = endpoint.received[-1]
    assert mailpass.webhooks.verify(body, headers, secret.group(1))["type"] == "email.test"

    async with database.transaction() as connection:
        await connection.execute(
            webhook_endpoints.update().values(enabled=False, disabled_reason="no delivery worked")
        )
    page = await browser.get("/dashboard/webhooks")
    assert "disabled" in page.text
    assert "no delivery worked" in page.text
    enabled = await browser.post("/dashboard/webhooks/enable", {"id": str(endpoint_id)})
    assert "Endpoint on again" in (await browser.get(enabled.headers["location"])).text

    removed = await browser.post("/dashboard/webhooks/remove", {"id": str(endpoint_id)})
    assert removed.status_code == 303
    assert endpoint.url not in (await browser.get(removed.headers["location"])).text


async def test_another_accounts_endpoint_is_not_found(signed_in, database):
    owner, _ = await signed_in("owner@example.com")
    added = await owner.post("/dashboard/webhooks", {"url": "https://app.example.com/hook"})
    assert added.status_code == 200
    async with database.read() as connection:
        endpoint_id = (await connection.execute(sa.select(webhook_endpoints.c.id))).scalar_one()
    other, _ = await signed_in("other@example.com")
    assert (await other.get(f"/dashboard/webhooks/{endpoint_id}")).status_code == 404
    assert (
        await other.post("/dashboard/webhooks/remove", {"id": str(endpoint_id)})
    ).status_code == 404
    assert (await owner.get(f"/dashboard/webhooks/{endpoint_id}")).status_code == 200
