"""Opens and clicks reach the account's webhook endpoints too: the pixel and a tracked link
of mail really sent, fetched from the app, and their events delivered to a real HTTP server,
signed, with the hit's fields."""

from __future__ import annotations

import json

from tracking_helpers import BROWSER, TRACK_BOTH, html_of, read_html, tracking_path

import mailpass.webhooks

HTML = '<html><body><p><a href="https://shop.example/orders/1">Your order</a></p></body></html>'


async def test_an_open_and_a_click_are_posted_to_the_endpoint(
    app_client,
    make_account,
    smtp_sink,
    send,
    opens_written,
    delivered_long_ago,
    webhook_receiver,
    settings,
):
    services = app_client.app.state.services
    services.webhooks.settings = settings.model_copy(update={"webhooks_allow_private": True})
    endpoint = webhook_receiver([])
    account = await make_account(
        sink=smtp_sink, provider_options=TRACK_BOTH, permissions=["mail", "webhooks"]
    )
    created = await app_client.post(
        "/api/v1/webhooks",
        json={"url": endpoint.url, "event_types": ["open", "click"]},
        headers=account.headers,
    )
    secret = created.json()["data"]["secret"]
    message_id = await send(account, to="user@example.com", subject="Order", html=HTML)
    await delivered_long_ago(message_id)
    found = read_html(html_of(smtp_sink.messages[0]))
    headers = {"User-Agent": BROWSER}
    assert (await app_client.get(tracking_path(found.images[0]), headers=headers)).is_success
    click = await app_client.get(tracking_path(found.hrefs[0]), headers=headers)
    assert click.status_code == 302
    await opens_written()

    dispatcher = services.webhooks.dispatcher()
    try:
        await dispatcher.run(until_idle=True)
    finally:
        await dispatcher.close()
    delivered = {
        event["type"]: event["data"]
        for event in (
            mailpass.webhooks.verify(body, received, secret) for received, body in endpoint.received
        )
    }
    assert set(delivered) == {"email.open", "email.click"}  # not sent: not wanted
    assert delivered["email.open"]["message_id"] == message_id
    assert delivered["email.open"]["user_agent"] == BROWSER
    assert delivered["email.open"]["machine"] is False
    assert delivered["email.click"]["url"] == "https://shop.example/orders/1"
    assert json.loads(endpoint.received[0][1])["data"]["subject"] == "Order"
