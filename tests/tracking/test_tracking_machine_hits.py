"""Machine opens and clicks are recorded, marked, and kept out of first_opened/clicked_at."""

from __future__ import annotations

import asyncio

from tracking_helpers import BROWSER, TRACK_BOTH, html_of, read_html, tracking_path

APPLE_PROXY = "Mozilla/5.0"
GMAIL_PROXY = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
)
TWO_LINKS = (
    '<body><a href="https://shop.example/a?x=1">A</a> <a href="https://shop.example/b">B</a></body>'
)


async def sent_and_read(send, account, smtp_sink, html=TWO_LINKS):
    message_id = await send(account, to="user@example.com", subject="Hi", html=html)
    found = read_html(html_of(smtp_sink.messages[-1]))
    return message_id, found


async def test_privacy_proxies_and_head_requests_are_marked(
    app_client, make_account, smtp_sink, send, status_of, delivered_long_ago
):
    account = await make_account(sink=smtp_sink, provider_options=TRACK_BOTH)
    message_id, found = await sent_and_read(send, account, smtp_sink)
    await delivered_long_ago(message_id)
    pixel = tracking_path(found.images[0])

    for agent in (APPLE_PROXY, GMAIL_PROXY):
        response = await app_client.get(pixel, headers={"User-Agent": agent})
        assert response.status_code == 200
    head = await app_client.head(pixel, headers={"User-Agent": BROWSER})
    assert head.status_code == 200
    assert head.headers["content-type"] == "image/gif"

    data = await status_of(account, message_id)
    assert [(e["event_type"], e["machine"], e["machine_reason"]) for e in data["events"]] == [
        ("open", True, "Apple Mail Privacy Protection proxy"),
        ("open", True, "Gmail image proxy"),
        ("open", True, "HEAD request (link checker)"),
    ]
    assert data["message"]["first_opened_at"] is None

    person = await app_client.get(pixel, headers={"User-Agent": BROWSER})
    assert person.status_code == 200
    data = await status_of(account, message_id)
    assert data["events"][-1]["machine"] is False
    assert data["message"]["first_opened_at"] == data["events"][-1]["created_at"]


async def test_hits_seconds_after_delivery_are_scanners_but_still_redirect(
    app_client, make_account, smtp_sink, send, status_of
):
    account = await make_account(sink=smtp_sink, provider_options=TRACK_BOTH)
    message_id, found = await sent_and_read(send, account, smtp_sink)

    # A security gateway opens and follows the first link while the message is delivered.
    await app_client.get(tracking_path(found.images[0]), headers={"User-Agent": BROWSER})
    click = await app_client.get(tracking_path(found.hrefs[0]), headers={"User-Agent": BROWSER})
    assert click.status_code == 302
    assert click.headers["location"] == "https://shop.example/a?x=1"

    data = await status_of(account, message_id)
    reasons = {e["machine_reason"] for e in data["events"]}
    assert reasons == {"within 5 s of delivery (security scanner)"}
    assert data["message"]["first_opened_at"] is None
    assert data["message"]["first_clicked_at"] is None


async def test_every_link_clicked_within_a_second_is_a_link_scanner(
    app_client, make_account, smtp_sink, send, status_of, delivered_long_ago
):
    account = await make_account(sink=smtp_sink, provider_options=TRACK_BOTH)
    message_id, found = await sent_and_read(send, account, smtp_sink)
    await delivered_long_ago(message_id)

    for href in found.hrefs:
        response = await app_client.get(tracking_path(href), headers={"User-Agent": BROWSER})
        assert response.status_code == 302
    data = await status_of(account, message_id)
    # The whole burst is marked, the first click included, and none counts as the first click.
    assert [(e["url"], e["machine"]) for e in data["events"]] == [
        ("https://shop.example/a?x=1", True),
        ("https://shop.example/b", True),
    ]
    assert {e["machine_reason"] for e in data["events"]} == {
        "links clicked together within 1 s (link scanner)"
    }
    assert data["message"]["first_clicked_at"] is None

    await asyncio.sleep(1.1)  # a person, later
    await app_client.get(tracking_path(found.hrefs[1]), headers={"User-Agent": BROWSER})
    data = await status_of(account, message_id)
    assert data["events"][-1]["machine"] is False
    assert data["message"]["first_clicked_at"] == data["events"][-1]["created_at"]


async def test_a_person_clicking_one_link_twice_is_no_machine(
    app_client, make_account, smtp_sink, send, status_of, delivered_long_ago
):
    account = await make_account(sink=smtp_sink, provider_options=TRACK_BOTH)
    message_id, found = await sent_and_read(send, account, smtp_sink)
    await delivered_long_ago(message_id)
    for _ in range(2):
        await app_client.get(tracking_path(found.hrefs[0]), headers={"User-Agent": BROWSER})
    data = await status_of(account, message_id)
    assert [e["machine"] for e in data["events"]] == [False, False]
    assert data["message"]["first_clicked_at"] == data["events"][0]["created_at"]


async def test_link_checkers_asking_with_head_are_marked(
    app_client, make_account, smtp_sink, send, status_of, delivered_long_ago
):
    account = await make_account(sink=smtp_sink, provider_options=TRACK_BOTH)
    message_id, found = await sent_and_read(send, account, smtp_sink)
    await delivered_long_ago(message_id)
    response = await app_client.head(tracking_path(found.hrefs[0]), headers={"User-Agent": BROWSER})
    assert response.status_code == 302
    assert response.headers["location"] == "https://shop.example/a?x=1"
    data = await status_of(account, message_id)
    assert data["events"][0]["machine_reason"] == "HEAD request (link checker)"
    assert data["message"]["first_clicked_at"] is None


async def test_many_simultaneous_opens_are_all_recorded(
    app_client, make_account, smtp_sink, send, status_of, delivered_long_ago
):
    account = await make_account(sink=smtp_sink, provider_options=TRACK_BOTH)
    message_ids, pixels = [], []
    for _ in range(3):
        message_id, found = await sent_and_read(send, account, smtp_sink)
        await delivered_long_ago(message_id)
        message_ids.append(message_id)
        pixels.append(tracking_path(found.images[0]))

    responses = await asyncio.gather(
        *(
            app_client.get(pixels[index % 3], headers={"User-Agent": f"{BROWSER} n{index}"})
            for index in range(60)
        )
    )
    assert {response.status_code for response in responses} == {200}
    for index, message_id in enumerate(message_ids):
        data = await status_of(account, message_id)
        agents = sorted(e["user_agent"] for e in data["events"])
        assert agents == sorted(f"{BROWSER} n{n}" for n in range(index, 60, 3))
        assert data["message"]["first_opened_at"] == data["events"][0]["created_at"]
