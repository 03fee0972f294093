"""Mail clients nobody here wrote, configured as their users configure them for a relay:
Django's SMTP ``EmailBackend``, Nodemailer (npm) under Node, and Debian's PHPMailer under
php-cli; each through STARTTLS with the tests' CA, with an attachment and a blind copy. What
they send is delivered by the workers to a real SMTP sink and read there with ``email``."""

from __future__ import annotations

import asyncio
import base64
import email
import json
import os
import shutil
from email.policy import default
from pathlib import Path

import pytest
import sqlalchemy as sa

from mailpass.storage.tables import messages
from sdks.sdk_helpers import RUNTIMES_REQUIRED, run_program

CLIENTS = Path(__file__).parent / "clients"
REPOSITORY = Path(__file__).resolve().parents[2]
# Where scripts/test installs Nodemailer (npm), beside the virtualenv.
NODE_MODULES = Path(
    os.environ.get("MAILPASS_TEST_NODE_MODULES", REPOSITORY / ".venv" / "node" / "node_modules")
)
PHPMAILER = Path("/usr/share/php/libphp-phpmailer/autoload.php")
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 20


async def delivered(app_client, smtp_sink, drain, message_id: str):
    """The message as the sink got it, and its record."""
    assert await drain() == 0
    [received] = await smtp_sink.wait_for(1)
    async with app_client.app.state.services.database.read() as connection:
        query = sa.select(messages).where(messages.c.message_id == message_id)
        record = (await connection.execute(query)).one()
    return received, record


def check_arrival(received, record, tag: str) -> None:
    arrived = email.message_from_bytes(received.data, policy=default)
    assert sorted(received.rcpt_tos) == ["ann@example.com", "dan@example.com"]
    assert arrived["Bcc"] is None
    assert arrived["X-MailPass-Tags"] is None
    [attachment] = list(arrived.iter_attachments())
    assert attachment.get_filename() == "order.pdf"
    assert attachment.get_content() == PDF
    assert record.source == "smtp"
    assert record.bcc == ["dan@example.com"]
    assert record.tags == [tag, "receipt"]
    assert record.attachments[0]["size"] == len(PDF)


async def test_django_send_mail_and_an_email_message_with_an_attachment(
    app_client, make_account, smtp_sink, relay, smtp_ca_file, drain, monkeypatch
):
    django = pytest.importorskip("django")
    from django.conf import settings as django_settings

    if not django_settings.configured:
        django_settings.configure()
    django.setup()
    from django.core.mail import EmailMessage, send_mail
    from django.core.mail.backends.smtp import EmailBackend

    account = await make_account(sink=smtp_sink)
    # Django's backend verifies the server with the default context: the tests' CA as the system's.
    monkeypatch.setenv("SSL_CERT_FILE", str(smtp_ca_file))

    def backend() -> EmailBackend:
        return EmailBackend(
            host="localhost",
            port=relay.port,
            username="mailpass",
            password=account.key,
            use_tls=True,
            timeout=10,
        )

    def send_both() -> tuple[int, int]:
        plain = send_mail(
            "Sent with send_mail",
            "Hello from Django",
            "Shop <news@shop.example>",
            ["ann@example.com"],
            connection=backend(),
        )
        message = EmailMessage(
            "Your receipt",
            "Attached.",
            "news@shop.example",
            ["Ann <ann@example.com>"],
            bcc=["dan@example.com"],
            headers={"X-MailPass-Tags": "django, receipt"},
            connection=backend(),
        )
        message.attach("order.pdf", PDF, "application/pdf")
        return plain, message.send()

    assert await asyncio.to_thread(send_both) == (1, 1)
    assert await drain() == 0
    arrived = {
        email.message_from_bytes(received.data)["Subject"]: received
        for received in await smtp_sink.wait_for(2)
    }
    assert sorted(arrived) == ["Sent with send_mail", "Your receipt"]
    second = arrived["Your receipt"]
    record_id = email.message_from_bytes(second.data)["Message-ID"]
    async with app_client.app.state.services.database.read() as connection:
        query = sa.select(messages).where(messages.c.message_id == record_id)
        record = (await connection.execute(query)).one()
    check_arrival(second, record, "django")


@pytest.mark.skipif(
    (shutil.which("node") is None or not (NODE_MODULES / "nodemailer").is_dir())
    and not RUNTIMES_REQUIRED,
    reason="Node.js or Nodemailer is not installed (scripts/test installs them)",
)
async def test_nodemailer(app_client, make_account, smtp_sink, relay, smtp_ca_file, drain):
    account = await make_account(sink=smtp_sink)
    run = await run_program(
        "node",
        str(CLIENTS / "nodemailer_send.cjs"),
        env={
            "NODE_PATH": str(NODE_MODULES),
            "RELAY_PORT": str(relay.port),
            "RELAY_KEY": account.key,
            "RELAY_CA": str(smtp_ca_file),
            "ATTACHMENT_B64": base64.b64encode(PDF).decode(),
        },
    )
    assert run.returncode == 0, run.explain()
    sent = json.loads(run.stdout)
    assert sent["response"] == f"250 2.0.0 OK {sent['messageId']}"  # its own Message-ID, kept
    received, record = await delivered(app_client, smtp_sink, drain, sent["messageId"])
    check_arrival(received, record, "node")


@pytest.mark.skipif(
    (shutil.which("php") is None or not PHPMAILER.is_file()) and not RUNTIMES_REQUIRED,
    reason="php-cli or libphp-phpmailer is not installed (scripts/test installs them)",
)
async def test_phpmailer(app_client, make_account, smtp_sink, relay, smtp_ca_file, drain):
    account = await make_account(sink=smtp_sink)
    run = await run_program(
        "php",
        str(CLIENTS / "phpmailer_send.php"),
        env={
            "RELAY_PORT": str(relay.port),
            "RELAY_KEY": account.key,
            "RELAY_CA": str(smtp_ca_file),
            "ATTACHMENT_B64": base64.b64encode(PDF).decode(),
        },
    )
    assert run.returncode == 0, run.explain()
    sent = json.loads(run.stdout)
    assert sent["response"] == f"250 2.0.0 OK {sent['messageId']}"
    received, record = await delivered(app_client, smtp_sink, drain, sent["messageId"])
    check_arrival(received, record, "php")
