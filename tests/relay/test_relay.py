"""The SMTP relay with Python's smtplib, on both databases: what it takes is recorded as a
batch item is, delivered by the workers to a real SMTP sink, and arrives as it was sent."""

from __future__ import annotations

import asyncio
import base64
import email
import smtplib
import ssl
from email.policy import default

import pytest
import sqlalchemy as sa

from mailpass.storage.tables import captured_mail, messages
from relay.conftest import RELAY_HOSTNAME, mail, wire_bytes

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40


async def record_of(services, message_id: str) -> dict:
    async with services.database.read() as connection:
        row = (
            await connection.execute(sa.select(messages).where(messages.c.message_id == message_id))
        ).one()
    return dict(row._mapping)


async def test_a_message_is_queued_and_delivered_as_it_was_sent(
    app_client, make_account, smtp_sink, smtp_client, drain, status_of
):
    account = await make_account(sink=smtp_sink)
    message = mail(
        to="Ann <ann@example.com>",
        cc="cat@example.com",
        message_id="<order-42@shop.example>",
        x_mailpass_tags="order, receipt",
        x_mailpass_metadata='{"order": 42}',
    )
    message.add_alternative("<p>Thank you for your <b>order</b>.</p>", subtype="html")
    message.add_attachment(PDF, maintype="application", subtype="pdf", filename="order.pdf")
    code, reply = await smtp_client.submit(
        account.key, message, recipients=["ann@example.com", "cat@example.com", "dan@example.com"]
    )
    assert (code, reply) == (250, "2.0.0 OK <order-42@shop.example>"), reply

    services = app_client.app.state.services
    record = await record_of(services, "<order-42@shop.example>")
    assert record["status"] == "queued"
    assert record["source"] == "smtp"
    assert record["to_email"] == "ann@example.com"
    assert record["cc"] == ["cat@example.com"]
    assert record["bcc"] == ["dan@example.com"]  # in the envelope, not in a header
    assert record["tags"] == ["order", "receipt"]
    assert record["user_metadata"] == {"order": 42}
    assert record["subject"] == "Your order"
    assert record["text"] == "Thank you for your order.\n"
    assert record["html"] == "<p>Thank you for your <b>order</b>.</p>\n"
    assert record["attachments"] == [
        {
            "filename": "order.pdf",
            "content_type": "application/pdf",
            "size": len(PDF),
            "content_id": None,
        }
    ]

    assert await drain() == 0
    [received] = await smtp_sink.wait_for(1)
    assert sorted(received.rcpt_tos) == ["ann@example.com", "cat@example.com", "dan@example.com"]
    arrived = email.message_from_bytes(received.data, policy=default)
    assert arrived["Message-ID"] == "<order-42@shop.example>"
    assert arrived["Bcc"] is None
    assert not [name for name in arrived if name.lower().startswith("x-mailpass-")]
    assert arrived["Received"].startswith("from ")
    assert f"by {RELAY_HOSTNAME} (MailPass) with ESMTPSA" in arrived["Received"]
    assert arrived["Date"] == message["Date"] or arrived["Date"] is not None
    [attachment] = list(arrived.iter_attachments())
    assert attachment.get_filename() == "order.pdf"
    assert attachment.get_content() == PDF
    # Apart from the fields taken out and the trace field added, the bytes are the client's.
    sent = wire_bytes(message)
    assert received.data.split(b"\r\n\r\n", 1)[1] == sent.split(b"\r\n\r\n", 1)[1]

    status = await status_of(account, "<order-42@shop.example>")
    assert status["status"] == "sent"
    assert status["tags"] == ["order", "receipt"]


async def test_the_clients_message_id_is_replaced_when_invalid_or_taken(
    app_client, make_account, smtp_sink, smtp_client, drain
):
    account = await make_account(sink=smtp_sink)
    first = await smtp_client.submit(account.key, mail(message_id="<same@shop.example>"))
    again = await smtp_client.submit(account.key, mail(message_id="<same@shop.example>"))
    invalid = await smtp_client.submit(account.key, mail(message_id="no brackets here"))
    missing = mail()
    assert first == (250, "2.0.0 OK <same@shop.example>")
    ids = []
    for code, reply in (again, invalid, await smtp_client.submit(account.key, missing)):
        assert code == 250, reply
        ids.append(reply.split()[-1])
    assert len(set(ids)) == 3
    assert all(i.startswith("<") and i.endswith("@shop.example>") for i in ids), ids
    assert "<same@shop.example>" not in ids
    assert await drain() == 0
    arrived = await smtp_sink.wait_for(4)
    got = sorted(email.message_from_bytes(m.data)["Message-ID"] for m in arrived)
    assert got == sorted(["<same@shop.example>", *ids])
    for received in arrived:  # one Message-ID field each
        assert len(email.message_from_bytes(received.data).get_all("Message-ID")) == 1


async def test_a_test_key_is_captured_not_delivered(
    app_client, make_account, smtp_sink, smtp_client
):
    account = await make_account(sink=smtp_sink, test_key=True)
    code, reply = await smtp_client.submit(account.key, mail())
    assert code == 250, reply
    services = app_client.app.state.services
    async with services.database.read() as connection:
        captured = (await connection.execute(sa.select(captured_mail))).all()
    [row] = captured
    assert row.message_id == reply.split()[-1]
    assert row.recipients == ["ann@example.com"]
    record = await record_of(services, row.message_id)
    assert record["status"] == "sent"
    assert record["is_test"] is True
    assert smtp_sink.messages == []


async def test_without_auth_or_with_a_wrong_key_nothing_is_taken(
    app_client, make_account, smtp_sink, smtp_client
):
    account = await make_account(sink=smtp_sink)
    assert await smtp_client.submit(None, mail()) == (
        530,
        "5.7.0 authentication required: AUTH with an API key as the password",
    )
    with pytest.raises(smtplib.SMTPAuthenticationError) as wrong:
        await smtp_client.submit("mp_live_wrong", mail())
    assert wrong.value.smtp_code == 535
    assert wrong.value.smtp_error == b"5.7.8 invalid API key"
    reader = await make_account("reader@example.com", sink=smtp_sink, permissions=["domains"])
    with pytest.raises(smtplib.SMTPAuthenticationError) as lacking:
        await smtp_client.submit(reader.key, mail())
    assert b"lacks the `mail` permission" in lacking.value.smtp_error
    services = app_client.app.state.services
    async with services.database.read() as connection:
        assert (
            await connection.execute(sa.select(sa.func.count()).select_from(messages))
        ).scalar() == 0
    assert account.key  # a valid key exists, it was just not given


async def test_auth_is_not_offered_before_starttls(app_client, make_account, relay, smtp_ca_file):
    account = await make_account()

    def converse() -> tuple[bool, tuple[int, bytes], bool]:
        with smtplib.SMTP("localhost", relay.port, timeout=10) as client:
            client.ehlo()
            offered_before = client.has_extn("auth")
            answer = client.docmd(
                "AUTH", "PLAIN " + base64.b64encode(b"\0mailpass\0" + account.key.encode()).decode()
            )
            client.starttls(context=ssl.create_default_context(cafile=str(smtp_ca_file)))
            client.ehlo()
            return offered_before, answer, client.has_extn("auth")

    before, answer, after = await asyncio.to_thread(converse)
    assert before is False
    assert answer[0] == 538
    assert after is True


@pytest.mark.parametrize("transfer", ["8bit", "quoted-printable", "base64"])
async def test_tracking_rewrites_the_html_part_alone(
    app_client, make_account, smtp_sink, smtp_client, drain, transfer
):
    account = await make_account(sink=smtp_sink)
    message = mail(x_mailpass_track_opens="true", x_mailpass_track_clicks="yes")
    html = '<p>Your <a href="https://shop.example/orders/42">order</a> — ça marche.</p>'
    message.add_alternative(html, subtype="html", cte=transfer)
    message.add_attachment(PDF, maintype="application", subtype="pdf", filename="order.pdf")
    code, reply = await smtp_client.submit(account.key, message)
    assert code == 250, reply
    record = await record_of(app_client.app.state.services, reply.split()[-1])
    assert record["tracking_id"]
    assert record["tracked_links"] == ["https://shop.example/orders/42"]
    assert record["html"] == html + "\n"  # as the client sent it

    assert await drain() == 0
    [received] = await smtp_sink.wait_for(1)
    arrived = email.message_from_bytes(received.data, policy=default)
    body = arrived.get_body(("html",))
    assert body["Content-Transfer-Encoding"] == transfer
    tracked = body.get_content()
    assert "https://shop.example/orders/42" not in tracked
    assert "http://127.0.0.1:8000/t/c/" in tracked
    assert "/t/o/" in tracked  # the pixel
    assert "ça marche" in tracked
    assert arrived.get_body(("plain",)).get_content() == "Thank you for your order.\r\n"
    [attachment] = list(arrived.iter_attachments())
    assert attachment.get_content() == PDF


async def test_a_signed_message_is_never_rewritten(
    app_client, make_account, smtp_sink, smtp_client, drain
):
    """Tracking asked for, but the html is under a signature: the mail goes as it came."""
    account = await make_account(sink=smtp_sink)
    signed = (
        b"From: news@shop.example\r\nTo: ann@example.com\r\nSubject: signed\r\n"
        b"X-MailPass-Track-Clicks: true\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; '
        b'micalg=sha-256; boundary="sig"\r\n\r\n'
        b"--sig\r\nContent-Type: text/html; charset=us-ascii\r\n\r\n"
        b'<a href="https://shop.example/x">x</a>\r\n'
        b"--sig\r\nContent-Type: application/pkcs7-signature; name=smime.p7s\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nMIAGCSqGSIb3DQEHAqCAMIACAQEx\r\n--sig--\r\n"
    )
    code, reply = await smtp_client.submit(
        account.key, signed, sender="news@shop.example", recipients=["ann@example.com"]
    )
    assert code == 250, reply
    assert await drain() == 0
    [received] = await smtp_sink.wait_for(1)
    assert received.data.endswith(signed.split(b"MIME-Version: 1.0\r\n", 1)[1])
    record = await record_of(app_client.app.state.services, reply.split()[-1])
    assert record["tracking_id"] is None
