"""What the provider webhook tests share: each provider's payloads, signed the provider's way
with keys made here, and a local HTTPS host standing in for SNS (``SnsHost``)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import ssl
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import aiosmtplib
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from smtp_fixtures import default_ca


@dataclass
class Hooked:
    """An account, its provider of the kind under test, and that provider's webhook."""

    headers: dict[str, str]
    provider: Any
    path: str
    user_id: int

    async def send(self, client: Any, to: str | list[str] = "user@example.com") -> str:
        answer = await client.post(
            "/api/v1/mail/send",
            json={"to": to, "subject": "Your receipt", "text": "Thanks"},
            headers=self.headers,
        )
        assert answer.status_code == 200, answer.text
        message_id: str = answer.json()["data"]["message_id"]
        return message_id

    async def status(self, client: Any, message_id: str) -> dict[str, Any]:
        answer = await client.get(f"/api/v1/mail/status/{message_id}", headers=self.headers)
        assert answer.status_code == 200, answer.text
        data: dict[str, Any] = answer.json()["data"]
        return data

    async def suppressed(self, client: Any) -> dict[str, str]:
        answer = await client.get("/api/v1/suppressions", headers=self.headers)
        assert answer.status_code == 200, answer.text
        return {item["email"]: item["reason"] for item in answer.json()["data"]["suppressions"]}


def now_seconds() -> int:
    return int(time.time())


# SendGrid: an ECDSA P-256 key pair; the public half as SendGrid shows it (base64 DER).


@dataclass
class SendGridSigner:
    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )

    @property
    def public_key(self) -> str:
        der = self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode()

    def headers(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        stamp = str(timestamp if timestamp is not None else now_seconds())
        signature = self.private_key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {
            "Content-Type": "application/json",
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
        }


def sendgrid_event(event: str, message_id: str, email: str, **fields: Any) -> dict[str, Any]:
    """An event as SendGrid's Event Webhook documents it, for mail sent by SMTP."""
    return {
        "email": email,
        "timestamp": now_seconds(),
        "smtp-id": message_id,
        "event": event,
        "category": ["receipts"],
        "sg_event_id": secrets.token_urlsafe(16),
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
        **fields,
    }


# Mailgun: an HMAC-SHA256 over timestamp and token with the webhook signing key.


def mailgun_payload(
    signing_key: str, event_data: dict[str, Any], *, token: str | None = None
) -> dict[str, Any]:
    timestamp = str(now_seconds())
    token = token or secrets.token_hex(25)
    signature = hmac.new(
        signing_key.encode(), (timestamp + token).encode(), hashlib.sha256
    ).hexdigest()
    return {
        "signature": {"timestamp": timestamp, "token": token, "signature": signature},
        "event-data": event_data,
    }


def mailgun_event(event: str, message_id: str, recipient: str, **fields: Any) -> dict[str, Any]:
    """``event-data`` as Mailgun's webhooks document it (its Message-ID without brackets)."""
    return {
        "event": event,
        "id": secrets.token_urlsafe(16),
        "timestamp": time.time(),
        "log-level": "info",
        "recipient": recipient,
        "message": {
            "headers": {
                "to": recipient,
                "message-id": message_id.strip("<>"),
                "from": "sender@shop.example",
                "subject": "Your receipt",
            },
            "attachments": [],
            "size": 111,
        },
        **fields,
    }


# SNS: a certificate of our own, served by SnsHost, and messages signed with its key.


class SnsHost:
    """An HTTPS server for ``localhost`` (certificate from the test CA) that serves the
    signing certificate at ``/SimpleNotificationService-test.pem`` and notes each GET, among
    them the subscription confirmations."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
        now = datetime.now(UTC)
        self.certificate_pem = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30))
            .sign(self.key, hashes.SHA256())
            .public_bytes(serialization.Encoding.PEM)
        )
        self.requests: list[str] = []
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                host.requests.append(self.path)
                if self.path.endswith(".pem"):
                    body = host.certificate_pem
                else:
                    body = b"<ConfirmSubscriptionResponse/>"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        default_ca().issue_cert("localhost").configure_cert(context)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def certificate_url(self) -> str:
        return f"https://localhost:{self.port}/SimpleNotificationService-test.pem"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def sign(self, message: dict[str, Any], version: str = "1") -> dict[str, Any]:
        """``message`` with SNS's signature fields, signed as SNS signs."""
        fields = (
            ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
            if message["Type"] == "Notification"
            else ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
        )
        text = "".join(f"{name}\n{message[name]}\n" for name in fields if name in message)
        algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
        signature = self.key.sign(text.encode(), padding.PKCS1v15(), algorithm)
        return {
            **message,
            "SignatureVersion": version,
            "Signature": base64.b64encode(signature).decode(),
            "SigningCertURL": message.get("SigningCertURL", self.certificate_url),
        }

    def notification(self, ses: dict[str, Any], version: str = "1") -> bytes:
        return json.dumps(
            self.sign(
                {
                    "Type": "Notification",
                    "MessageId": secrets.token_hex(16),
                    "TopicArn": "arn:aws:sns:us-east-1:123456789012:ses-events",
                    "Message": json.dumps(ses),
                    "Timestamp": datetime.now(UTC).isoformat(timespec="milliseconds")[:-6] + "Z",
                    "UnsubscribeURL": f"https://localhost:{self.port}/?Action=Unsubscribe",
                },
                version,
            )
        ).encode()


def ses_mail(message_id: str, destination: list[str]) -> dict[str, Any]:
    """``mail`` of an SES notification for mail sent through SES's SMTP interface."""
    return {
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds")[:-6] + "Z",
        "source": "sender@shop.example",
        "sourceArn": "arn:aws:ses:us-east-1:123456789012:identity/shop.example",
        "sendingAccountId": "123456789012",
        "messageId": "0100018c3f0e5f3a-5e7b3c1e-0000-0000-0000-000000000000-000000",
        "destination": destination,
        "headersTruncated": False,
        "headers": [{"name": "Message-ID", "value": message_id}],
        "commonHeaders": {
            "from": ["Shop <sender@shop.example>"],
            "to": destination,
            "messageId": message_id,
            "subject": "Your receipt",
        },
    }


# Reports mailed back to the bounce listener.

BOUNCE_DOMAIN = "bounces.shop.example"


def dsn(return_path: str, message_id: str, recipient: str, *, action: str, status: str) -> bytes:
    """A delivery status notification as Postfix writes one."""
    diagnostic = {
        "5": "smtp; 550 5.1.1 <{r}>: Recipient address rejected: User unknown",
        "4": "smtp; 452 4.2.2 <{r}>: Mailbox full",
    }[status[0]].format(r=recipient)
    return (
        "From: MAILER-DAEMON@mx.example.com (Mail Delivery System)\r\n"
        f"To: {return_path}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <20261207.ABC123@mx.example.com>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/report; report-type=delivery-status;\r\n"
        '\tboundary="B1"\r\n'
        "\r\n"
        "--B1\r\n"
        "Content-Type: text/plain\r\n"
        "\r\n"
        "I'm sorry to have to inform you that your message could not be delivered.\r\n"
        "\r\n"
        "--B1\r\n"
        "Content-Type: message/delivery-status\r\n"
        "\r\n"
        "Reporting-MTA: dns; mx.example.com\r\n"
        "Arrival-Date: Mon,  7 Dec 2026 15:00:00 +0000 (UTC)\r\n"
        "\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        f"Original-Recipient: rfc822;{recipient}\r\n"
        f"Action: {action}\r\n"
        f"Status: {status}\r\n"
        "Remote-MTA: dns; mail.example.com\r\n"
        f"Diagnostic-Code: {diagnostic}\r\n"
        "\r\n"
        "--B1\r\n"
        "Content-Type: text/rfc822-headers\r\n"
        "\r\n"
        f"Message-ID: {message_id}\r\n"
        f"To: {recipient}\r\n"
        "Subject: Your receipt\r\n"
        "\r\n"
        "--B1--\r\n"
    ).encode()


def arf(message_id: str, recipient: str | None) -> bytes:
    """An abuse report (ARF) as a mailbox provider's feedback loop sends one; some redact the
    recipient."""
    original_rcpt = f"Original-Rcpt-To: {recipient}\r\n" if recipient else ""
    return (
        "From: feedbackloop@fbl.example.net\r\n"
        f"To: fbl@{BOUNCE_DOMAIN}\r\n"
        "Subject: Abuse report\r\n"
        "Message-ID: <arf-1@fbl.example.net>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="F1"\r\n'
        "\r\n"
        "--F1\r\n"
        "Content-Type: text/plain\r\n"
        "\r\n"
        "This is an email abuse report.\r\n"
        "\r\n"
        "--F1\r\n"
        "Content-Type: message/feedback-report\r\n"
        "\r\n"
        "Feedback-Type: abuse\r\n"
        "User-Agent: SomeFBL/1.0\r\n"
        "Version: 1\r\n"
        f"{original_rcpt}"
        "\r\n"
        "--F1\r\n"
        "Content-Type: message/rfc822\r\n"
        "\r\n"
        f"Message-ID: {message_id}\r\n"
        "To: redacted@example.com\r\n"
        "Subject: Your receipt\r\n"
        "\r\n"
        "Thanks\r\n"
        "\r\n"
        "--F1--\r\n"
    ).encode()


async def send_report(port: int, to: str, content: bytes) -> None:
    """Mail ``content`` to ``to`` from the null sender (``MAIL FROM:<>``), as reports are."""
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=5) as client:
        await client.mail("")
        refused = await client.rcpt(to)
        if refused.code != 250:
            raise aiosmtplib.SMTPRecipientRefused(refused.code, refused.message, to)
        await client.data(content)
