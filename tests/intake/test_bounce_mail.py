"""Bounces and complaints that come back by mail: MailPass's return paths (VERP) on mail sent
through a plain SMTP provider, and the bounce listener that takes the delivery status
notifications (RFC 3464) and abuse reports (RFC 5965) sent to them. Real SMTP both ways: the
mail goes out to the test's sink, the reports come in over SMTP (aiosmtplib, and Python's own
smtplib as a mail server would send them), on both databases."""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import AsyncIterator

import aiosmtplib
import pytest
import sqlalchemy as sa
from intake_helpers import BOUNCE_DOMAIN, arf, dsn, send_report

from mailpass.config import Settings
from mailpass.intake.inbound import start_bounce_listener
from mailpass.storage.tables import events, messages


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"bounce_domain": BOUNCE_DOMAIN})


@pytest.fixture
async def bounce_port(app_client) -> AsyncIterator[int]:  # type: ignore[no-untyped-def]
    """The app's bounce listener, on a free port."""
    listener = await start_bounce_listener(app_client.app.state.services.intake, "127.0.0.1", 0)
    yield listener.sockets[0].getsockname()[1]
    listener.close()
    await listener.wait_closed()


async def test_a_bounce_mailed_back_to_the_return_path_is_recorded(
    app_client, make_account, smtp_sink, bounce_port
):
    account = await make_account(sink=smtp_sink, permissions=["mail", "suppressions"])
    answer = await app_client.post(
        "/api/v1/mail/send",
        json={"to": "gone@example.com", "subject": "Your receipt", "text": "Thanks"},
        headers=account.headers,
    )
    message_id = answer.json()["data"]["message_id"]
    (received,) = smtp_sink.messages
    # The envelope's sender is the message's return path; the From header stays the sender's.
    assert received.mail_from.startswith("bounces+")
    assert received.mail_from.endswith(f"@{BOUNCE_DOMAIN}")
    assert received.message["From"] == "Shop <sender@shop.example>"

    await send_report(
        bounce_port,
        received.mail_from,
        dsn(received.mail_from, message_id, "gone@example.com", action="failed", status="5.1.1"),
    )
    status = await app_client.get(f"/api/v1/mail/status/{message_id}", headers=account.headers)
    data = status.json()["data"]
    assert data["message"]["status"] == "bounced"
    bounce = data["events"][-1]
    assert bounce["event_type"] == "bounced"
    assert bounce["bounce_type"] == "hard"
    assert bounce["dsn_status"] == "5.1.1"
    assert bounce["report"] == "dsn"
    assert "User unknown" in bounce["diagnostic_code"]
    listed = await app_client.get("/api/v1/suppressions", headers=account.headers)
    assert [(s["email"], s["reason"]) for s in listed.json()["data"]["suppressions"]] == [
        ("gone@example.com", "hard_bounce")
    ]


async def test_the_workers_mail_has_return_paths_too_and_delays_are_deferrals(
    app_client, make_account, smtp_sink, bounce_port
):
    account = await make_account(sink=smtp_sink)
    queued = await app_client.post(
        "/api/v1/mail/send-batch",
        json={"messages": [{"to": "full@example.com", "subject": "Hi", "text": "Hello"}]},
        headers=account.headers,
    )
    assert queued.status_code == 200, queued.text
    await app_client.app.state.services.worker().run(until_idle=True)
    (received,) = smtp_sink.messages
    assert received.mail_from.startswith("bounces+")
    message_id = received.message["Message-ID"]

    # Python's smtplib, as another mail server would send the report.
    report = dsn(
        received.mail_from, message_id, "full@example.com", action="delayed", status="4.2.2"
    )

    def post() -> None:
        with smtplib.SMTP("127.0.0.1", bounce_port, timeout=5) as client:
            client.sendmail("", [received.mail_from], report)

    await asyncio.to_thread(post)
    status = await app_client.get(f"/api/v1/mail/status/{message_id}", headers=account.headers)
    data = status.json()["data"]
    assert data["message"]["status"] == "sent"
    assert data["events"][-1]["event_type"] == "deferred"
    assert data["events"][-1]["dsn_status"] == "4.2.2"


async def test_a_complaint_report_is_matched_by_the_quoted_message_id(
    app_client, make_account, smtp_sink, bounce_port
):
    account = await make_account(sink=smtp_sink, permissions=["mail", "suppressions"])
    answer = await app_client.post(
        "/api/v1/mail/send",
        json={"to": "angry@example.com", "subject": "Your receipt", "text": "Thanks"},
        headers=account.headers,
    )
    message_id = answer.json()["data"]["message_id"]
    # A feedback loop writes to the address it was given, not a return path; the recipient is
    # redacted, and the message had one: it is the complaint's.
    await send_report(bounce_port, f"fbl@{BOUNCE_DOMAIN}", arf(message_id, None))
    status = await app_client.get(f"/api/v1/mail/status/{message_id}", headers=account.headers)
    data = status.json()["data"]
    assert data["message"]["status"] == "complained"
    assert data["events"][-1]["recipient"] == "angry@example.com"
    assert data["events"][-1]["feedback_type"] == "abuse"
    listed = await app_client.get("/api/v1/suppressions", headers=account.headers)
    assert listed.json()["data"]["suppressions"][0]["reason"] == "complaint"


async def test_what_is_not_a_report_or_not_ours_records_nothing(
    app_client, make_account, smtp_sink, bounce_port, database
):
    account = await make_account(sink=smtp_sink, permissions=["mail", "suppressions"])
    answer = await app_client.post(
        "/api/v1/mail/send",
        json={"to": ["one@example.com", "two@example.com"], "subject": "Hi", "text": "Hello"},
        headers=account.headers,
    )
    message_id = answer.json()["data"]["message_id"]
    return_path = smtp_sink.messages[0].mail_from

    # Not for the bounce domain: refused at RCPT, so the listener relays nothing.
    with pytest.raises(aiosmtplib.SMTPRecipientRefused):
        await send_report(bounce_port, "someone@elsewhere.example", b"Subject: hi\r\n\r\nhi\r\n")
    # An auto-reply is no report: taken, logged, dropped.
    await send_report(
        bounce_port, return_path, b"Subject: Out of office\r\nTo: x\r\n\r\nBack Monday.\r\n"
    )
    # A report that names someone the message was not sent to speaks for nobody.
    await send_report(
        bounce_port,
        return_path,
        dsn(return_path, message_id, "victim@example.com", action="failed", status="5.1.1"),
    )
    # A return path whose signature is wrong names no message; the quoted Message-ID is not
    # ours either.
    forged = return_path.split("-")[0] + "-aaaaaaaaaa@" + BOUNCE_DOMAIN
    await send_report(
        bounce_port,
        forged,
        dsn(forged, "<nope@elsewhere.example>", "one@example.com", action="failed", status="5.1.1"),
    )

    async with database.read() as connection:
        recorded = (
            await connection.execute(sa.select(sa.func.count()).select_from(events))
        ).scalar_one()
        stored = (
            await connection.execute(sa.select(sa.func.count()).select_from(messages))
        ).scalar_one()
    assert recorded == 0
    assert stored == 1  # nothing that arrived became a message
    listed = await app_client.get("/api/v1/suppressions", headers=account.headers)
    assert listed.json()["data"]["suppressions"] == []
