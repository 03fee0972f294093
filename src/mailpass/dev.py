"""``mailpass dev``: a working server in one command, with nothing to configure.

It starts a capture inbox (a real SMTP server inside this process that keeps nothing and prints a
line per mail), makes it the default provider of a ready account, creates an API key and prints a
curl command that works as is; and the SMTP relay on a local port, with a self-signed
certificate, for applications that send over SMTP (user ``mailpass``, the key as the password).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import ipaddress
import secrets
import shlex
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import uvicorn
from aiosmtpd.smtp import SMTP, Envelope, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mailpass.accounts import service as accounts
from mailpass.api.app import create_app
from mailpass.config import Settings, load_instance_secret
from mailpass.providers import service as providers
from mailpass.providers.kinds import resolve_connection
from mailpass.providers.models import Provider
from mailpass.providers.secrets import SecretBox
from mailpass.relay.server import RelayListeners, start_relay
from mailpass.server import uvicorn_config
from mailpass.storage.database import Database
from mailpass.storage.migrate import upgrade

__all__ = ["CaptureInbox", "run_dev"]

DEV_USER = "dev@example.com"
DEV_PROVIDER = "capture-inbox"
DEV_SENDER = "mailpass-dev@example.com"
STARTUP_POLL_INTERVAL = 0.05  # seconds
DEV_PASSWORD_BYTES = 12  # 16 url-safe characters


class CaptureInbox:
    """aiosmtpd handler: accept everything, print one line per mail."""

    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, _server: SMTP, _session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        self.count += 1
        click.echo(
            f"captured #{self.count}  to={', '.join(envelope.rcpt_tos)}  "
            f"subject={parsed.get('Subject', '')!s}  message-id={parsed.get('Message-ID', '')!s}",
            err=False,
        )
        sys.stdout.flush()
        return "250 2.0.0 captured"


async def start_capture_inbox(host: str, port: int) -> tuple[asyncio.Server, int]:
    inbox = CaptureInbox()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(inbox, hostname="mailpass-capture", ident="MailPass capture inbox"),
        host=host,
        port=port,
    )
    bound_port: int = server.sockets[0].getsockname()[1]
    return server, bound_port


@dataclass(frozen=True, slots=True)
class Sandbox:
    api_key: str
    dashboard_password: str  # a fresh one every start, like the key


async def prepare_sandbox(settings: Settings, smtp_port: int) -> Sandbox:
    """The dev account, its capture inbox as default provider, and a fresh all-permission key."""
    database = Database(settings.resolved_database_url)
    try:
        await upgrade(database)
        try:
            user = await accounts.require_user(database, DEV_USER)
        except accounts.AccountError:
            user = await accounts.create_user(database, DEV_USER)
        connection_settings = resolve_connection(
            "smtp", host="127.0.0.1", port=smtp_port, security="none"
        )
        try:
            existing: Provider | None = await providers.find_provider(database, DEV_PROVIDER, user)
        except providers.ProviderError:
            existing = None
        if existing is None:
            await providers.add_provider(
                database,
                SecretBox(load_instance_secret(settings)),
                user,
                providers.NewProvider(
                    name=DEV_PROVIDER,
                    kind="smtp",
                    host="127.0.0.1",
                    port=smtp_port,
                    security="none",
                    from_email=DEV_SENDER,
                    from_name="MailPass Dev",
                    make_default=True,
                ),
            )
        else:
            await providers.point_at(database, existing, connection_settings)
        created = await accounts.create_key(database, user, name="dev")
        password = secrets.token_urlsafe(DEV_PASSWORD_BYTES)
        await accounts.set_password(database, DEV_USER, password)
        return Sandbox(api_key=created.key, dashboard_password=password)
    finally:
        await database.dispose()


def dev_certificate(data_dir: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1 (and its key) for the dev relay's
    STARTTLS, made once in the data directory and kept for ten years."""
    folder = data_dir / "dev-smtp"
    cert, key = folder / "cert.pem", folder / "key.pem"
    if cert.is_file() and key.is_file():
        return cert, key
    folder.mkdir(parents=True, exist_ok=True)
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(private, hashes.SHA256())
    )
    key.touch(mode=0o600)
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return cert, key


def relay_lines(key: str, relay_port: int) -> str:
    return (
        f"SMTP relay on 127.0.0.1:{relay_port} (STARTTLS with a self-signed certificate; "
        f"plain-text AUTH too, on this loopback port):\n"
        f"  host 127.0.0.1, port {relay_port}, user mailpass, password {key}\n"
        f"  Django: EMAIL_HOST='127.0.0.1' EMAIL_PORT={relay_port} EMAIL_HOST_USER='mailpass' "
        f"EMAIL_HOST_PASSWORD='{key}'\n\n"
    )


def banner(sandbox: Sandbox, base_url: str, smtp_port: int, relay_port: int | None = None) -> str:
    key = sandbox.api_key
    body = '{"to": "user@example.com", "subject": "Hello", "html": "<p>Hello World</p>"}'
    curl = (
        f"curl -X POST {base_url}/api/v1/mail/send \\\n"
        f"  -H {shlex.quote('Authorization: Bearer ' + key)} \\\n"
        f"  -H 'Content-Type: application/json' \\\n"
        f"  -d {shlex.quote(body)}"
    )
    return (
        f"MailPass dev server on {base_url}\n"
        f"Capture inbox (default provider) on 127.0.0.1:{smtp_port}: mail stops here and is "
        f"printed below.\n\n"
        f"API key (shown once): {key}\n"
        f"Dashboard: {base_url}/dashboard/ (sign in as {DEV_USER}, password "
        f"{sandbox.dashboard_password})\n\n"
        + (relay_lines(key, relay_port) if relay_port is not None else "")
        + f"Try it:\n{curl}\n"
    )


async def run_dev(
    settings: Settings, *, host: str, port: int, smtp_port: int, relay_port: int = 0
) -> None:
    inbox_server, bound_smtp_port = await start_capture_inbox("127.0.0.1", smtp_port)
    relay: RelayListeners | None = None
    if not (settings.smtp_tls_cert and settings.smtp_tls_key):
        settings.smtp_tls_cert, settings.smtp_tls_key = dev_certificate(settings.data_dir)
    settings.smtp_allow_plaintext_auth = True  # the dev relay listens on the loopback only
    try:
        sandbox = await prepare_sandbox(settings, bound_smtp_port)
        app = create_app(settings, worker=True)
        config = uvicorn_config(
            app,
            host=host,
            port=port,
            log_level="warning",
            max_header_bytes=settings.max_header_bytes,
        )
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve())
        while not server.started and not serving.done():  # noqa: ASYNC110  # uvicorn has no event
            await asyncio.sleep(STARTUP_POLL_INTERVAL)
        if server.started:  # print the curl command only once it works
            services = app.state.services
            relay = await start_relay(
                settings, services.relay(), "127.0.0.1", smtp_port=relay_port, smtps_port=None
            )
            bound_relay_port = relay.servers[0].sockets[0].getsockname()[1]
            shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
            click.echo(
                banner(sandbox, f"http://{shown_host}:{port}", bound_smtp_port, bound_relay_port)
            )
            sys.stdout.flush()
        await serving
    finally:
        if relay is not None:
            await relay.close()
        inbox_server.close()
        await inbox_server.wait_closed()
