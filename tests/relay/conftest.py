"""The SMTP relay on the test's event loop, with a certificate from the tests' CA (trustme),
in front of the real app's services; its mail delivered by real workers to an aiosmtpd sink."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest
import trustme

from mailpass.config import Settings
from mailpass.relay.server import RelayListeners, start_relay

RELAY_HOSTNAME = "relay.mailpass.test"


@pytest.fixture
def relay_certificate(smtp_ca: trustme.CA, tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for localhost and 127.0.0.1 and its key, as the PEM files an operator
    gives the relay."""
    issued = smtp_ca.issue_cert("localhost", "127.0.0.1")
    cert, key = tmp_path / "relay-cert.pem", tmp_path / "relay-key.pem"
    for blob in issued.cert_chain_pems:
        with cert.open("ab") as out:
            out.write(blob.bytes())
    issued.private_key_pem.write_to_path(str(key))
    return cert, key


@pytest.fixture
def settings(settings: Settings, relay_certificate: tuple[Path, Path]) -> Settings:
    settings.smtp_tls_cert, settings.smtp_tls_key = relay_certificate
    settings.smtp_hostname = RELAY_HOSTNAME
    settings.queue_poll_interval = 0.05
    return settings


@dataclass
class Relay:
    listeners: RelayListeners
    port: int  # STARTTLS
    smtps_port: int  # implicit TLS


@pytest.fixture
async def relay(app_client) -> AsyncIterator[Relay]:  # type: ignore[no-untyped-def]
    services = app_client.app.state.services
    listeners = await start_relay(
        services.settings, services.relay(), "127.0.0.1", smtp_port=0, smtps_port=0
    )
    ports = [server.sockets[0].getsockname()[1] for server in listeners.servers]
    try:
        yield Relay(listeners, *ports)
    finally:
        await listeners.close()


class Client:
    """Python's smtplib against the relay, in a thread (the relay runs on the test's loop)."""

    def __init__(self, port: int, ca_file: Path) -> None:
        self.port = port
        self.context = ssl.create_default_context(cafile=str(ca_file))

    def _submit(
        self, key: str | None, data: bytes, sender: str, recipients: list[str], tls: bool
    ) -> tuple[int, str]:
        with smtplib.SMTP("localhost", self.port, timeout=10) as client:
            if tls:
                client.starttls(context=self.context)
            if key is not None:
                client.login("mailpass", key)
            client.ehlo_or_helo_if_needed()
            code, reply = client.mail(sender)
            if code != 250:
                return code, reply.decode()
            for recipient in recipients:
                code, reply = client.rcpt(recipient)
                if code not in (250, 251):
                    return code, reply.decode()
            code, reply = client.data(data)
            return code, reply.decode()

    async def submit(
        self,
        key: str | None,
        message: EmailMessage | bytes,
        *,
        sender: str | None = None,
        recipients: list[str] | None = None,
        tls: bool = True,
    ) -> tuple[int, str]:
        """(code, text) of the last reply: DATA's, or the first refusal before it."""
        data = message if isinstance(message, bytes) else wire_bytes(message)
        if sender is None:
            assert isinstance(message, EmailMessage)
            sender = message["From"].addresses[0].addr_spec
        if recipients is None:
            assert isinstance(message, EmailMessage)
            recipients = [
                a.addr_spec
                for name in ("To", "Cc", "Bcc")
                for a in (message[name].addresses if message[name] else ())
            ]
        return await asyncio.to_thread(self._submit, key, data, sender, recipients, tls)


@pytest.fixture
def smtp_client(relay: Relay, smtp_ca_file: Path) -> Client:
    return Client(relay.port, smtp_ca_file)


def mail(**fields: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = fields.pop("sender", "Shop <news@shop.example>")
    message["To"] = fields.pop("to", "Ann <ann@example.com>")
    message["Subject"] = fields.pop("subject", "Your order")
    for name, value in fields.items():
        message[name.replace("_", "-")] = value
    message.set_content("Thank you for your order.\n")
    return message


def wire_bytes(message: EmailMessage) -> bytes:
    """The message as it goes over SMTP: lines end in CRLF (smtplib's ``data`` sends bytes
    as they are)."""
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
