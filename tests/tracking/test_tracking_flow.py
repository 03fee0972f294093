"""Open and click tracking end to end: the API sends to a real SMTP server, and the pixel and
links in the mail that arrived are fetched from the running app."""

from __future__ import annotations

import pytest
from tracking_helpers import (
    BROWSER,
    PUBLIC_URL,
    TRACK_BOTH,
    html_of,
    read_html,
    tracking_path,
)

from mailpass.tracking.tokens import TokenSigner

ORDER_URL = "https://shop.example/orders/1?ref=mail&lang=ja#details"
HTML = (
    "<!DOCTYPE html>\n<html><head><title>Order</title></head>\n<body>\n"
    "<h1>ご注文ありがとうございます</h1>\n"
    '<p><a href="https://shop.example/orders/1?ref=mail&amp;lang=ja#details">Your order</a></p>\n'
    '<p><a href="mailto:help@shop.example">Mail us</a> or <a href="tel:+81312345678">call</a>'
    ' · <a href="#top">top</a></p>\n'
    '<p><a href="javascript:alert(document.cookie)">x</a> <a href="//evil.example/">y</a></p>\n'
    "<!-- </body> -->\n</body>\n</html>\n"
)


def is_gif_1x1(body):
    return (
        body[:6] == b"GIF89a"
        and int.from_bytes(body[6:8], "little") == 1
        and int.from_bytes(body[8:10], "little") == 1
        and body.endswith(b";")
    )


async def test_sent_mail_carries_the_pixel_and_tracked_links(
    app_client, make_account, smtp_sink, send
):
    account = await make_account(sink=smtp_sink, provider_options=TRACK_BOTH)
    await send(account, to="user@example.com", subject="Order", html=HTML, text="Order 1")

    html = html_of(smtp_sink.messages[0])
    found = read_html(html)
    tracked = [href for href in found.hrefs if href.startswith(PUBLIC_URL)]
    assert len(tracked) == 1
    assert tracking_path(tracked[0]).startswith("/t/c/")
    assert found.hrefs[1:] == [
        "mailto:help@shop.example",
        "tel:+81312345678",
        "#top",
        "javascript:alert(document.cookie)",
        "//evil.example/",
    ]
    assert len(found.images) == 1
    assert tracking_path(found.images[0]).startswith("/t/o/")
    # The pixel sits right before the real </body>, not the one in the comment.
    assert html.index("<img") > html.index("<!-- </body> -->")
    assert html.endswith(" /></body>\n</html>\n")
    assert "ご注文ありがとうございます" in html
    # The text part is not touched.
    text = smtp_sink.messages[0].message.get_body(preferencelist=("plain",)).get_content()
    assert text.rstrip() == "Order 1"


async def test_opening_and_clicking_records_events_and_redirects_exactly(
    app_client, make_account, smtp_sink, send, status_of, delivered_long_ago
):
    account = await make_account(sink=smtp_sink, provider_options=TRACK_BOTH)
    message_id = await send(account, to="user@example.com", subject="Order", html=HTML)
    await delivered_long_ago(message_id)
    found = read_html(html_of(smtp_sink.messages[0]))

    pixel = await app_client.get(
        tracking_path(found.images[0]),
        headers={"User-Agent": BROWSER, "X-Forwarded-For": "198.51.100.99"},
    )
    assert pixel.status_code == 200
    assert pixel.headers["content-type"] == "image/gif"
    assert is_gif_1x1(pixel.content)
    assert "no-store" in pixel.headers["cache-control"]
    assert "no-cache" in pixel.headers["cache-control"]

    click = await app_client.get(tracking_path(found.hrefs[0]), headers={"User-Agent": BROWSER})
    assert click.status_code == 302
    assert click.headers["location"] == ORDER_URL

    data = await status_of(account, message_id)
    opened, clicked = data["events"]
    # No trusted proxy is configured: X-Forwarded-For is not believed.
    assert opened == {
        "event_type": "open",
        "ip_address": "127.0.0.1",
        "user_agent": BROWSER,
        "url": None,
        "machine": False,
        "machine_reason": None,
        "created_at": opened["created_at"],
    }
    assert clicked["event_type"] == "click"
    assert clicked["url"] == ORDER_URL
    assert clicked["machine"] is False
    assert data["message"]["first_opened_at"] == opened["created_at"]
    assert data["message"]["first_clicked_at"] == clicked["created_at"]

    # Every open and click is recorded; the first ones stay the first.
    again = await app_client.get(tracking_path(found.images[0]), headers={"User-Agent": BROWSER})
    assert again.status_code == 200
    data = await status_of(account, message_id)
    assert [event["event_type"] for event in data["events"]] == ["open", "click", "open"]
    assert data["message"]["first_opened_at"] == opened["created_at"]


@pytest.mark.parametrize(
    "path",
    [
        "/t/c/%2F%2Fevil.example",
        "/t/c/https:%2F%2Fevil.example",
        "/t/c/javascript:alert(1)",
        "/t/c/..%2F..%2Fapi%2Fv1",
        "/t/o/%2F%2Fevil.example.gif",
        "/t/c/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ],
)
async def test_made_up_tokens_are_404_and_redirect_nowhere(app_client, path):
    response = await app_client.get(
        path + "?url=https://evil.example/", headers={"User-Agent": BROWSER}
    )
    assert response.status_code == 404
    assert "location" not in response.headers
    assert response.json()["success"] is False
    assert response.json()["error"]["code"] == "NOT_FOUND"


async def test_open_redirect_attempts_record_nothing_and_redirect_nowhere(
    app_client, make_account, smtp_sink, send, status_of, settings, delivered_long_ago
):
    account = await make_account(sink=smtp_sink, provider_options=TRACK_BOTH)
    message_id = await send(account, to="user@example.com", subject="Order", html=HTML)
    await delivered_long_ago(message_id)
    found = read_html(html_of(smtp_sink.messages[0]))
    click_path = tracking_path(found.hrefs[0])
    pixel_path = tracking_path(found.images[0])
    click_token = click_path.removeprefix("/t/c/")
    open_token = pixel_path.removeprefix("/t/o/").removesuffix(".gif")

    ours = TokenSigner(settings.secret_key)
    theirs = TokenSigner("another-instance-secret")
    token = ours.verify(click_token)
    assert token is not None

    def flipped(text, position):
        return text[:position] + ("A" if text[position] != "A" else "B") + text[position + 1 :]

    attempts = [
        f"/t/c/{flipped(click_token, 3)}",  # altered tracking id
        f"/t/c/{flipped(click_token, len(click_token) - 1)}",  # altered signature
        f"/t/c/{click_token}A",
        f"/t/c/{open_token}",  # an open token is no click token
        f"/t/o/{click_token}.gif",  # and the other way round
        f"/t/c/{theirs.click_token(token.tracking_id, 0)}",  # signed by another instance
        # Validly signed, but the message has no second link: nowhere to go.
        f"/t/c/{ours.click_token(token.tracking_id, 1)}",
        f"/t/c/{ours.click_token('A' * 16, 0)}",  # no such message
    ]
    for path in attempts:
        response = await app_client.get(path, headers={"User-Agent": BROWSER})
        assert response.status_code == 404, path
        assert "location" not in response.headers, path
        assert response.json()["error"]["code"] == "NOT_FOUND"
    assert (await status_of(account, message_id))["events"] == []

    # A pixel with a token of ours still loads when its message is gone; nothing is recorded.
    gone = await app_client.get(f"/t/o/{ours.open_token('A' * 16)}.gif")
    assert gone.status_code == 200
    assert is_gif_1x1(gone.content)
    assert (await status_of(account, message_id))["events"] == []

    # Whatever the query string says, a real token leads only to its own link.
    for query in ("?url=https://evil.example/", "?next=//evil.example&redirect=javascript:x"):
        response = await app_client.get(click_path + query, headers={"User-Agent": BROWSER})
        assert response.status_code == 302
        assert response.headers["location"] == ORDER_URL
    events = (await status_of(account, message_id))["events"]
    assert [event["url"] for event in events] == [ORDER_URL, ORDER_URL]


async def test_tracking_off_leaves_the_html_untouched(
    app_client, make_account, smtp_sink, send, raw_messages
):
    plain = await make_account(sink=smtp_sink)  # tracking is off until turned on
    await send(plain, to="user@example.com", subject="Order", html=HTML)
    tracked_provider = await make_account(
        "other@example.com", sink=smtp_sink, provider_options=TRACK_BOTH
    )
    await send(
        tracked_provider,
        to="user@example.com",
        subject="Order",
        html=HTML,
        track_opens=False,
        track_clicks=False,
    )
    assert html_of(smtp_sink.messages[0]) == HTML
    assert html_of(smtp_sink.messages[1]) == HTML
    rows = await raw_messages()
    assert [row["tracking_id"] for row in rows] == [None, None]


async def test_a_request_can_turn_each_kind_of_tracking_on(
    app_client, make_account, smtp_sink, send, raw_messages
):
    account = await make_account(sink=smtp_sink)
    await send(account, to="a@example.com", subject="Links", html=HTML, track_clicks=True)
    await send(account, to="b@example.com", subject="Pixel", html=HTML, track_opens=True)
    await send(account, to="c@example.com", subject="Text", text="no html", track_opens=True)

    links_only = read_html(html_of(smtp_sink.messages[0]))
    assert links_only.images == []
    assert links_only.hrefs[0].startswith(PUBLIC_URL + "/t/c/")
    pixel_only = read_html(html_of(smtp_sink.messages[1]))
    assert pixel_only.hrefs[0] == ORDER_URL
    assert pixel_only.images[0].startswith(PUBLIC_URL + "/t/o/")
    assert smtp_sink.messages[2].message.get_content().rstrip() == "no html"

    rows = {row["subject"]: row for row in await raw_messages()}
    # The record keeps the html as the client sent it (showing it must not fire the pixel).
    assert rows["Links"]["html"] == HTML
    assert rows["Links"]["tracked_links"] == [ORDER_URL]
    assert rows["Pixel"]["tracked_links"] == []
    assert rows["Text"]["tracking_id"] is None


async def test_batch_messages_are_tracked_with_batch_defaults(
    app_client, make_account, smtp_sink, status_of, delivered_long_ago
):
    account = await make_account(sink=smtp_sink)
    response = await app_client.post(
        "/api/v1/mail/send-batch",
        json={
            "messages": [
                {"to": "a@example.com", "subject": "A", "html": HTML},
                {"to": "b@example.com", "subject": "B", "html": HTML, "track_clicks": False},
                {"to": "c@example.com", "subject": "C", "html": HTML, "track_opens": "yes"},
            ],
            "track_opens": True,
            "track_clicks": True,
        },
        headers=account.headers,
    )
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert (data["queued"], data["failed"]) == (2, 1)
    assert data["messages"][2]["details"] == [
        {"field": "messages.2.track_opens", "message": "Input should be a valid boolean"}
    ]
    worker = app_client.app.state.services.worker()
    await worker.run(until_idle=True)
    await smtp_sink.wait_for(2)

    by_subject = {m.message["Subject"]: read_html(html_of(m)) for m in smtp_sink.messages}
    assert by_subject["A"].hrefs[0].startswith(PUBLIC_URL + "/t/c/")
    assert by_subject["A"].images[0].startswith(PUBLIC_URL + "/t/o/")
    assert by_subject["B"].hrefs[0] == ORDER_URL
    assert by_subject["B"].images[0].startswith(PUBLIC_URL + "/t/o/")

    message_id = data["messages"][0]["message_id"]
    await delivered_long_ago(message_id)
    click = await app_client.get(
        tracking_path(by_subject["A"].hrefs[0]), headers={"User-Agent": BROWSER}
    )
    assert click.headers["location"] == ORDER_URL
    assert (await status_of(account, message_id))["events"][0]["url"] == ORDER_URL


async def test_a_bad_tracking_flag_is_a_validation_error(app_client, make_account, smtp_sink):
    account = await make_account(sink=smtp_sink)
    response = await app_client.post(
        "/api/v1/mail/send",
        json={"to": "a@example.com", "subject": "x", "html": HTML, "track_clicks": "on"},
        headers=account.headers,
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert error["details"] == [
        {"field": "track_clicks", "message": "Input should be a valid boolean"}
    ]
    assert smtp_sink.messages == []


async def test_test_key_mail_is_tracked_in_the_capture_inbox_too(
    app_client, make_account, smtp_sink, send, status_of, database
):
    account = await make_account(sink=smtp_sink, test_key=True, provider_options=TRACK_BOTH)
    message_id = await send(account, to="user@example.com", subject="Order", html=HTML)
    assert smtp_sink.messages == []
    import sqlalchemy as sa

    from mailpass.storage.tables import captured_mail

    async with database.read() as connection:
        raw = (await connection.execute(sa.select(captured_mail.c.raw))).scalar_one()
    assert b"/t/o/" in raw
    assert b"/t/c/" in raw
    assert (await status_of(account, message_id))["message"]["first_opened_at"] is None


async def test_the_pixel_takes_only_get_and_head(app_client, make_account, smtp_sink, send):
    account = await make_account(sink=smtp_sink, provider_options=TRACK_BOTH)
    await send(account, to="user@example.com", subject="Order", html=HTML)
    pixel = tracking_path(read_html(html_of(smtp_sink.messages[0])).images[0])
    head = await app_client.head(pixel, headers={"User-Agent": BROWSER})
    assert head.status_code == 200
    assert head.headers["content-type"] == "image/gif"
    posted = await app_client.post(pixel, headers={"User-Agent": BROWSER})
    assert posted.status_code == 405
    assert posted.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
