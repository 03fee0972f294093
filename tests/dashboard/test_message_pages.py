"""Dashboard > Messages: the filtered, paginated log and one message's details."""

from __future__ import annotations

import base64
import re
from datetime import timedelta

import sqlalchemy as sa

from mailpass.clock import utcnow
from mailpass.dashboard.message_pages import PAGE_SIZE
from mailpass.storage.tables import events, messages


def flat(page: str) -> str:
    """The page with each run of white space as one space: the text a reader sees."""
    return " ".join(page.split())


async def send(app_client, account, **fields):
    body = {"to": "user@example.com", "subject": "Hello", "text": "Hi", **fields}
    answer = await app_client.post("/api/v1/mail/send", json=body, headers=account.headers)
    return answer


async def pk_of(database, message_id):
    async with database.read() as connection:
        return (
            await connection.execute(
                sa.select(messages.c.id).where(messages.c.message_id == message_id)
            )
        ).scalar_one()


def subjects(html: str) -> list[str]:
    return re.findall(r'<a href="/dashboard/messages/\d+">([^<]*)</a>', html)


async def test_the_log_filters_by_status_tag_recipient_and_date(
    signed_in, make_smtp_sink, app_client, database
):
    sink = await make_smtp_sink(rcpt_replies={"refused@example.com": "550 5.1.1 No such user"})
    browser, account = await signed_in(sink=sink)
    await send(app_client, account, to="ann@example.com", subject="welcome", tags=["onboarding"])
    await send(app_client, account, to="bob@example.com", subject="receipt", tags=["billing"])
    failed = await send(app_client, account, to="refused@example.com", subject="bounced away")
    assert failed.status_code == 500
    old = await send(app_client, account, to="old@example.com", subject="last year")
    async with database.transaction() as connection:
        await connection.execute(
            messages.update()
            .where(messages.c.message_id == old.json()["data"]["message_id"])
            .values(created_at=utcnow() - timedelta(days=400))
        )

    async def log(query: str = "") -> list[str]:
        page = await browser.get(f"/dashboard/messages{query}")
        assert page.status_code == 200, page.text
        return subjects(page.text)

    assert await log() == ["bounced away", "receipt", "welcome", "last year"]  # newest first
    assert await log("?status=failed") == ["bounced away"]
    assert await log("?tag=billing") == ["receipt"]
    assert await log("?tag=bill") == []  # tags match whole
    assert await log("?recipient=ANN@") == ["welcome"]
    assert await log("?recipient=%25") == []  # a LIKE wildcard is taken literally
    today = utcnow().date()
    assert await log(f"?since={today}") == ["bounced away", "receipt", "welcome"]
    assert await log(f"?until={today - timedelta(days=1)}") == ["last year"]
    assert await log(f"?status=sent&tag=onboarding&since={today}&until={today}") == ["welcome"]


async def test_bad_filters_are_named(signed_in):
    browser, _ = await signed_in()
    page = await browser.get("/dashboard/messages?status=lost&since=yesterday&page=0")
    assert page.status_code == 400
    assert (
        'id="status-error">must be one of queued, sending, sent, bounced, complained, failed'
        in page.text
    )
    assert 'id="since-error">must be a date like 2026-01-30' in page.text
    assert "page must be a whole number from 1 up" in page.text


async def test_the_log_pages_through_many_messages(signed_in, smtp_sink, app_client):
    browser, account = await signed_in(sink=smtp_sink)
    total = PAGE_SIZE + 5
    batch = await app_client.post(
        "/api/v1/mail/send-batch",
        json={
            "messages": [
                {"to": "many@example.com", "subject": f"n{n:03}", "text": "x"} for n in range(total)
            ]
        },
        headers=account.headers,
    )
    assert batch.json()["data"]["queued"] == total
    first = await browser.get("/dashboard/messages?recipient=many")
    assert len(subjects(first.text)) == PAGE_SIZE
    assert subjects(first.text)[0] == f"n{total - 1:03}"
    assert 'href="/dashboard/messages?recipient=many&amp;page=2" rel="next"' in first.text
    second = await browser.get("/dashboard/messages?recipient=many&page=2")
    assert subjects(second.text) == [f"n{n:03}" for n in range(4, -1, -1)]
    assert 'rel="next"' not in second.text
    assert 'href="/dashboard/messages?recipient=many" rel="prev"' in second.text


async def test_the_detail_page_shows_headers_parts_replies_and_events(
    signed_in, make_smtp_sink, app_client, database
):
    sink = await make_smtp_sink()
    browser, account = await signed_in(sink=sink)
    sent = await send(
        app_client,
        account,
        subject="Your <order>",
        html='<h1>Thanks</h1><script>alert(1)</script><img src="https://img.example/p.png">',
        text="Thanks, plain",
        cc=["cc@example.com"],
        bcc=["hidden@example.com"],
        tags=["order"],
        metadata={"order_id": "12345"},
    )
    message_id = sent.json()["data"]["message_id"]
    pk = await pk_of(database, message_id)
    now = utcnow()
    async with database.transaction() as connection:
        await connection.execute(
            events.insert(),
            [
                {
                    "message_pk": pk,
                    "event_type": "open",
                    "ip_address": "203.0.113.9",
                    "user_agent": "Mozilla/5.0 <b>",
                    "url": None,
                    "created_at": now,
                    "is_machine": False,
                    "machine_reason": None,
                },
                {
                    "message_pk": pk,
                    "event_type": "click",
                    "ip_address": "198.51.100.7",
                    "user_agent": "LinkScanner/1.0",
                    "url": "https://shop.example/o?id=1&x=2",
                    "created_at": now,
                    "is_machine": True,
                    "machine_reason": "link scanner",
                },
            ],
        )

    page = await browser.get(f"/dashboard/messages/{pk}")
    assert page.status_code == 200
    html = page.text
    assert "Your &lt;order&gt;" in html
    assert message_id.replace("<", "&lt;").replace(">", "&gt;") in html
    assert "<th>Message-ID</th>" in html  # the mail's own headers
    assert "<th>Cc</th><td>cc@example.com</td>" in html
    assert "<th>Bcc</th>" not in html  # Bcc is never a header
    assert "hidden@example.com <small>(envelope only)</small>" in html
    assert "Thanks, plain" in html
    assert f'<iframe class="preview" sandbox src="/dashboard/messages/{pk}/preview"' in html
    assert "<script>alert(1)</script>" not in html  # the html lives only in the frame
    assert '<td class="reply">accepted</td>' in html
    # The timeline: accepted by /send, then sent with the provider's own answer.
    assert "<strong>accepted</strong> and handed to the provider at once" in flat(html)
    assert '<strong>sent</strong> the provider accepted it: <code class="reply">250 ' in flat(html)
    assert "Mozilla/5.0 &lt;b&gt;" in html
    assert "<strong>open</strong>" in html
    assert "https://shop.example/o?id=1&amp;x=2" in html
    assert "machine: link scanner" in html

    listing = (await browser.get("/dashboard/messages")).text
    assert '<td class="opens">1</td>' in listing
    assert '<td class="clicks">0</td>' in listing  # the scanner's click is no person's


async def test_the_html_preview_runs_nothing_and_loads_nothing(
    signed_in, smtp_sink, app_client, database
):
    browser, account = await signed_in(sink=smtp_sink)
    sent = await send(app_client, account, html="<p>Hi</p><script>alert(1)</script>")
    pk = await pk_of(database, sent.json()["data"]["message_id"])
    preview = await browser.get(f"/dashboard/messages/{pk}/preview")
    assert preview.status_code == 200
    assert preview.text == "<p>Hi</p><script>alert(1)</script>"
    policy = preview.headers["content-security-policy"]
    assert policy.startswith("sandbox;")
    assert "default-src 'none'" in policy
    assert "script-src" not in policy  # falls back to default-src 'none'
    assert "img-src data: cid:" in policy


async def test_failed_messages_show_the_providers_reply(
    signed_in, make_smtp_sink, app_client, database
):
    sink = await make_smtp_sink(data_replies=["554 5.7.1 Message rejected as spam"])
    browser, account = await signed_in(sink=sink)
    failed = await send(app_client, account, subject="spammy")
    assert failed.status_code == 500
    async with database.read() as connection:
        pk = (await connection.execute(sa.select(messages.c.id))).scalar_one()
    page = (await browser.get(f"/dashboard/messages/{pk}")).text
    assert "554 5.7.1 Message rejected as spam" in page
    assert 'status-failed">failed' in page


async def test_another_accounts_message_is_not_found(signed_in, smtp_sink, app_client, database):
    _, alice = await signed_in("alice@example.com", sink=smtp_sink)
    mallory, _ = await signed_in("mallory@example.com")
    sent = await send(app_client, alice, subject="alice's secret")
    pk = await pk_of(database, sent.json()["data"]["message_id"])
    for url in (f"/dashboard/messages/{pk}", f"/dashboard/messages/{pk}/preview"):
        answer = await mallory.get(url)
        assert answer.status_code == 404
        assert "alice&#39;s secret" not in answer.text
        assert "Not found" in answer.text
    assert (await mallory.get(f"/dashboard/messages/{pk + 1000}")).status_code == 404
    assert "alice" not in (await mallory.get("/dashboard/messages")).text


async def test_attachments_are_listed_and_downloaded_by_their_owner_only(
    signed_in, smtp_sink, app_client, database
):
    browser, alice = await signed_in("alice@example.com", sink=smtp_sink)
    mallory, _ = await signed_in("mallory@example.com")
    pdf = b"%PDF-1.7 " + bytes(range(256)) * 40
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    sent = await send(
        app_client,
        alice,
        html='<img src="cid:logo">',
        attachments=[
            {"filename": "Übersicht 2026.pdf", "content": base64.b64encode(pdf).decode()},
            {
                "filename": "logo.svg",
                "content": base64.b64encode(svg).decode(),
                "content_id": "logo",
            },
        ],
    )
    assert sent.status_code == 200, sent.text
    pk = await pk_of(database, sent.json()["data"]["message_id"])
    page = (await browser.get(f"/dashboard/messages/{pk}")).text
    assert "Übersicht 2026.pdf" in page
    assert "application/pdf" in page
    assert "10.0 KiB" in page
    assert "cid:logo" in page
    assert "image/svg+xml" in page
    assert f'href="/dashboard/messages/{pk}/attachments/0"' in page

    first = await browser.get(f"/dashboard/messages/{pk}/attachments/0")
    assert first.status_code == 200
    assert first.content == pdf
    assert first.headers["content-disposition"].startswith("attachment;")
    assert "filename*=utf-8''%C3%9Cbersicht%202026.pdf" in first.headers["content-disposition"]
    # Served as opaque bytes, never as the svg it is: its script must not run on our origin.
    second = await browser.get(f"/dashboard/messages/{pk}/attachments/1")
    assert second.content == svg
    assert second.headers["content-type"] == "application/octet-stream"
    assert second.headers["x-content-type-options"] == "nosniff"

    assert (await browser.get(f"/dashboard/messages/{pk}/attachments/2")).status_code == 404
    assert (await mallory.get(f"/dashboard/messages/{pk}/attachments/0")).status_code == 404


async def test_a_scheduled_message_shows_its_time_and_can_be_cancelled(
    signed_in, smtp_sink, app_client, database
):
    browser, account = await signed_in(sink=smtp_sink)
    when = (utcnow() + timedelta(hours=2)).replace(microsecond=0)
    scheduled = await send(app_client, account, subject="later", scheduled_at=when.isoformat())
    assert scheduled.json()["data"]["status"] == "queued"
    pk = scheduled.json()["data"]["queue_id"]
    page = (await browser.get(f"/dashboard/messages/{pk}")).text
    assert f"{when.isoformat(sep=' ')} UTC" in page
    assert f"<strong>scheduled</strong> for {when.isoformat(sep=' ')} UTC" in flat(page)
    assert f'action="/dashboard/messages/{pk}/cancel"' in page

    without_token = await browser.post(f"/dashboard/messages/{pk}/cancel", {"csrf_token": "x"})
    assert without_token.status_code == 403
    done = await browser.post(f"/dashboard/messages/{pk}/cancel")
    assert done.status_code == 303
    page = (await browser.get(done.headers["location"])).text
    assert "Message cancelled: it will not be sent." in page
    assert 'status-cancelled">cancelled' in page
    assert "<strong>cancelled</strong> by its sender before it was sent" in flat(page)
    assert "/cancel" not in page  # nothing left to cancel

    sent = await send(app_client, account, subject="now")
    sent_pk = await pk_of(database, sent.json()["data"]["message_id"])
    assert "/cancel" not in (await browser.get(f"/dashboard/messages/{sent_pk}")).text
    late = await browser.post(f"/dashboard/messages/{sent_pk}/cancel")
    page = (await browser.get(late.headers["location"])).text
    assert "had left the queue already" in page
    assert 'status-sent">sent' in page


async def test_what_the_provider_reported_is_on_the_timeline(
    signed_in, smtp_sink, app_client, database
):
    browser, account = await signed_in(sink=smtp_sink)
    sent = await send(app_client, account, to="gone@example.com")
    pk = await pk_of(database, sent.json()["data"]["message_id"])
    later = utcnow() + timedelta(seconds=5)
    reported = {"provider": "ses", "recipient": "gone@example.com"}
    async with database.transaction() as connection:
        await connection.execute(
            events.insert(),
            [
                {
                    "message_pk": pk,
                    "event_type": "delivered",
                    "data": {**reported, "smtp_reply": "250 ok <accepted>"},
                    "created_at": later,
                },
                {
                    "message_pk": pk,
                    "event_type": "bounced",
                    "data": {
                        **reported,
                        "bounce_type": "hard",
                        "dsn_status": "5.1.1",
                        "diagnostic_code": "smtp; 550 5.1.1 user unknown",
                    },
                    "created_at": later + timedelta(seconds=1),
                },
            ],
        )
        await connection.execute(
            messages.update().where(messages.c.id == pk).values(status="bounced")
        )
    page = flat((await browser.get(f"/dashboard/messages/{pk}")).text)
    assert (
        '<strong>delivered</strong> <span class="reporter">reported by Amazon SES</span> for '
        '<span class="recipient">gone@example.com</span>: <code class="reply">250 ok '
        "&lt;accepted&gt;</code>"
    ) in page
    assert '<span class="badge bounce-hard">hard bounce</span>' in page
    assert "smtp; 550 5.1.1 user unknown</code> <small>status 5.1.1</small>" in page
    listing = (await browser.get("/dashboard/messages?status=bounced")).text
    assert "gone@example.com" in listing

    async with database.transaction() as connection:
        await connection.execute(
            events.insert().values(
                message_pk=pk,
                event_type="complained",
                data={"provider": "smtp", "report": "arf", "feedback_type": "abuse"},
                created_at=later + timedelta(seconds=2),
            )
        )
        await connection.execute(
            events.insert().values(
                message_pk=pk,
                event_type="suppressed",
                data={"recipients": ["cc@example.com"]},
                created_at=later + timedelta(seconds=3),
            )
        )
    page = flat((await browser.get(f"/dashboard/messages/{pk}")).text)
    assert "reported by mail (an abuse report)</span> <small>feedback: abuse</small>" in page
    assert (
        '<strong>suppressed</strong> not sent to <span class="recipient">cc@example.com</span>'
        ": on the suppression list by its turn"
    ) in page
