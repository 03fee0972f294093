"""POST /api/v1/mail/send with the seed's request shapes, through a real SMTP server."""

from __future__ import annotations

import asyncio
from email.message import EmailMessage

import pytest

from mailpass.storage.tables import messages

SEED_FULL_REQUEST = {
    "to": "user@example.com",
    "subject": "Order Confirmation",
    "html": "<h1>Your order has been confirmed</h1>",
    "text": "Your order has been confirmed",
    "from_email": "support@yourdomain.com",
    "from_name": "Your App",
    "reply_to": "reply@yourdomain.com",
    "cc": ["cc@example.com"],
    "bcc": ["bcc@example.com"],
    "tags": ["order", "confirmation"],
    "metadata": {"order_id": "12345"},
}


async def test_full_seed_request_lands_in_the_right_places(app_client, make_account, smtp_sink):
    account = await make_account(sink=smtp_sink)

    response = await app_client.post(
        "/api/v1/mail/send", json=SEED_FULL_REQUEST, headers=account.headers
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    data = body["data"]
    assert set(data) == {"message_id", "status", "to", "from"}
    assert data["status"] == "sent"
    assert data["to"] == "user@example.com"
    assert data["from"] == "support@yourdomain.com"
    assert data["message_id"].startswith("<")
    assert data["message_id"].endswith("@yourdomain.com>")

    assert len(smtp_sink.messages) == 1
    delivered = smtp_sink.messages[0]
    assert delivered.mail_from == "support@yourdomain.com"
    assert sorted(delivered.rcpt_tos) == ["bcc@example.com", "cc@example.com", "user@example.com"]
    mail: EmailMessage = delivered.message
    assert mail["To"] == "user@example.com"
    assert mail["From"] == "Your App <support@yourdomain.com>"
    assert mail["Reply-To"] == "reply@yourdomain.com"
    assert mail["Cc"] == "cc@example.com"
    assert mail["Subject"] == "Order Confirmation"
    assert mail["Message-ID"] == data["message_id"]
    assert "bcc@example.com" not in delivered.data.decode()
    assert mail["Bcc"] is None
    assert mail.get_content_type() == "multipart/alternative"
    text_part, html_part = mail.iter_parts()
    assert text_part.get_content().strip() == "Your order has been confirmed"
    assert html_part.get_content().strip() == "<h1>Your order has been confirmed</h1>"

    status = await app_client.get(
        f"/api/v1/mail/status/{data['message_id']}", headers=account.headers
    )
    assert status.status_code == 200
    message = status.json()["data"]["message"]
    assert message["status"] == "sent"
    assert message["tags"] == ["order", "confirmation"]
    assert message["metadata"] == {"order_id": "12345"}
    assert message["cc"] == ["cc@example.com"]
    assert message["bcc"] == ["bcc@example.com"]
    assert message["error_message"] is None
    assert message["sent_at"] is not None


async def test_seed_curl_example_uses_the_provider_default_sender(
    app_client, make_account, smtp_sink
):
    account = await make_account(sink=smtp_sink)
    response = await app_client.post(
        "/api/v1/mail/send",
        content=b'{\n    "to": "user@example.com",\n    "subject": "Hello",\n'
        b'    "html": "<p>Hello World</p>"\n  }',
        headers={**account.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["from"] == "sender@shop.example"
    mail = smtp_sink.messages[0].message
    assert mail["From"] == "Shop <sender@shop.example>"
    assert mail.get_content_type() == "text/html"


async def test_non_ascii_and_idn_fields(app_client, make_account, smtp_sink):
    account = await make_account(sink=smtp_sink)
    response = await app_client.post(
        "/api/v1/mail/send",
        json={
            "to": "ユーザー <kunde@bücher.example>",
            "subject": "ご注文の確認 ✅",
            "text": "ありがとうございます。\n" + "長い行" * 600,
            "from_name": "ショップ",
        },
        headers=account.headers,
    )
    assert response.status_code == 200, response.text
    delivered = smtp_sink.messages[0]
    assert delivered.rcpt_tos == ["kunde@xn--bcher-kva.example"]
    assert delivered.message["Subject"] == "ご注文の確認 ✅"
    assert delivered.message["From"].addresses[0].display_name == "ショップ"
    assert all(len(line) < 998 for line in delivered.data.split(b"\r\n"))
    assert delivered.message.get_content().startswith("ありがとうございます。")


async def test_provider_connections_are_reused_across_requests(app_client, make_account, smtp_sink):
    account = await make_account(sink=smtp_sink)
    for index in range(5):
        response = await app_client.post(
            "/api/v1/mail/send",
            json={"to": f"u{index}@example.com", "subject": "hi", "text": "x"},
            headers=account.headers,
        )
        assert response.status_code == 200
    assert len(smtp_sink.messages) == 5
    assert smtp_sink.connections_opened == 1


@pytest.mark.parametrize("tls_mode", ["starttls", "tls"])
async def test_sends_over_tls_with_authentication(
    app_client, make_account, make_smtp_sink, tls_mode
):
    sink = await make_smtp_sink(tls_mode=tls_mode, auth={"mailer": "s3cret!"}, require_auth=True)
    account = await make_account(
        sink=sink, provider_options={"username": "mailer", "password": "s3cret!"}
    )
    response = await app_client.post(
        "/api/v1/mail/send",
        json={"to": "user@example.com", "subject": "secure", "text": "over TLS"},
        headers=account.headers,
    )
    assert response.status_code == 200, response.text
    assert sink.messages[0].message["Subject"] == "secure"


async def test_test_keys_deliver_into_the_capture_inbox_only(
    app_client, make_account, smtp_sink, database
):
    account = await make_account(sink=smtp_sink, test_key=True)
    assert account.key.startswith("mp_test_")
    response = await app_client.post(
        "/api/v1/mail/send",
        json={"to": "user@example.com", "subject": "sandboxed", "text": "x"},
        headers=account.headers,
    )
    assert response.status_code == 200, response.text
    assert smtp_sink.messages == []
    import sqlalchemy as sa

    from mailpass.storage.tables import captured_mail

    async with database.read() as connection:
        rows = (await connection.execute(sa.select(captured_mail))).mappings().all()
    assert len(rows) == 1
    assert rows[0]["message_id"] == response.json()["data"]["message_id"]
    assert b"Subject: sandboxed" in rows[0]["raw"]
    status = await app_client.get(
        f"/api/v1/mail/status/{rows[0]['message_id']}", headers=account.headers
    )
    assert status.json()["data"]["message"]["test"] is True


async def test_partial_recipient_refusal_is_sent_with_a_note(
    app_client, make_account, make_smtp_sink
):
    sink = await make_smtp_sink(rcpt_replies={"gone@example.com": "550 5.1.1 No such user"})
    account = await make_account(sink=sink)
    response = await app_client.post(
        "/api/v1/mail/send",
        json={"to": "user@example.com", "cc": ["gone@example.com"], "subject": "s", "text": "t"},
        headers=account.headers,
    )
    assert response.status_code == 200, response.text
    status = await app_client.get(
        f"/api/v1/mail/status/{response.json()['data']['message_id']}", headers=account.headers
    )
    message = status.json()["data"]["message"]
    assert message["status"] == "sent"
    assert "gone@example.com" in message["error_message"]
    assert "550" in message["error_message"]


async def test_concurrent_requests_against_an_hourly_limit_send_exactly_the_limit(
    app_client, make_account, smtp_sink, database
):
    account = await make_account(sink=smtp_sink, provider_options={"hourly_limit": 10})

    async def one(index: int):
        return await app_client.post(
            "/api/v1/mail/send",
            json={"to": f"u{index}@example.com", "subject": "burst", "text": "x"},
            headers=account.headers,
        )

    responses = await asyncio.gather(*(one(i) for i in range(50)))
    codes = sorted(response.status_code for response in responses)
    assert codes.count(200) == 10
    assert codes.count(429) == 40
    assert len(smtp_sink.messages) == 10
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.json()["error"]["code"] == "SEND_LIMIT_EXCEEDED"
    assert 3500 <= int(refused.headers["Retry-After"]) <= 3600
    import sqlalchemy as sa

    async with database.read() as connection:
        recorded = (
            await connection.execute(sa.select(sa.func.count()).select_from(messages))
        ).scalar()
    assert recorded == 10  # a refused request leaves no half-written message


async def test_daily_limit_is_enforced_too(app_client, make_account, smtp_sink):
    account = await make_account(sink=smtp_sink, provider_options={"daily_limit": 2})
    codes = []
    for index in range(3):
        response = await app_client.post(
            "/api/v1/mail/send",
            json={"to": f"u{index}@example.com", "subject": "d", "text": "x"},
            headers=account.headers,
        )
        codes.append(response.status_code)
    assert codes == [200, 200, 429]
    assert "daily" in response.json()["error"]["message"]
    assert int(response.headers["Retry-After"]) > 3600


async def test_intranet_domains_are_carried_and_invalid_ones_refused(
    app_client, make_account, smtp_sink
):
    account = await make_account("ops@corp.local", sink=smtp_sink)
    answer = await app_client.post(
        "/api/v1/mail/send",
        json={
            "to": ["ops@corp.local", "nas@home.lan", "ci@build.test"],
            "cc": "router@gw.home.arpa",
            "from_email": "alerts@monitor.internal",
            "subject": "Disk almost full",
            "text": "82 %",
        },
        headers=account.headers,
    )
    assert answer.status_code == 200, answer.text
    [received] = smtp_sink.messages
    assert received.mail_from == "alerts@monitor.internal"
    assert received.rcpt_tos == [
        "ops@corp.local",
        "nas@home.lan",
        "ci@build.test",
        "router@gw.home.arpa",
    ]
    refused = await app_client.post(
        "/api/v1/mail/send",
        json={"to": "a@nowhere.invalid", "subject": "x", "text": "x", "cc": "b@localhost"},
        headers=account.headers,
    )
    fields = {detail["field"] for detail in refused.json()["error"]["details"]}
    assert fields == {"to", "cc"}
