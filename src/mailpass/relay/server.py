"""The SMTP conversation of the relay: aiosmtpd is the protocol engine (commands, pipelining,
dot-stuffing, STARTTLS, AUTH's exchanges); what is hand-written around it here is MailPass's:

- AUTH PLAIN and LOGIN check the password as an API key, asynchronously, against the same
  per-address throttle as the API's failed keys (aiosmtpd's own authenticator hook is
  synchronous and could not read the database);
- a session's sender is checked again at every MAIL FROM (a revoked key stops within a
  second), and the envelope is checked there and at RCPT TO, so a client hears a refusal
  where it made it;
- sessions are capped per client address and per API key, a message (MAIL to the end of its
  data) has a deadline besides aiosmtpd's idle timeout, and every reply carries an enhanced
  status code (RFC 2034: aiosmtpd's own replies have none);
- the certificate is read again on SIGHUP, for the connections that follow.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import re
import signal
import socket
import ssl
from collections import Counter
from dataclasses import dataclass
from datetime import UTC
from email.utils import format_datetime
from pathlib import Path
from typing import Any, AnyStr

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from mailpass.accounts.keys import ApiKey
from mailpass.clock import utcnow
from mailpass.config import Settings
from mailpass.messages.results import SendingAccount
from mailpass.relay.flow import FlowControl
from mailpass.relay.service import Refusal, RelayService, Sender
from mailpass.runtime.metrics import RELAY_MESSAGES

__all__ = ["RelayListen", "RelayListeners", "start_relay"]

log = logging.getLogger("mailpass.relay")

IDENT = "MailPass ESMTP"
# Enhanced status codes (RFC 3463) for aiosmtpd's own replies, by reply code.
_ENHANCED = {
    "221": "2.0.0",
    "250": "2.0.0",
    "252": "2.0.0",
    "421": "4.4.2",
    "451": "4.3.0",
    "454": "4.7.0",
    "500": "5.5.2",
    "501": "5.5.4",
    "502": "5.5.1",
    "503": "5.5.1",
    "504": "5.5.4",
    "530": "5.7.0",
    "535": "5.7.8",
    "538": "5.7.11",
    "550": "5.0.0",
    "552": "5.3.4",
    "553": "5.1.0",
    "554": "5.0.0",
    "555": "5.5.4",
}
# A path in angle brackets whose local part is a dot-atom and whose domain is a host name: what
# nearly every client sends. Quoted local parts, source routes and the rest take the long way.
_SIMPLE_PATH = re.compile(
    r"\s*<([A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)>(.*)",
    re.DOTALL,
)
_HAS_ENHANCED = re.compile(r"\d{3}[ -][245]\.\d{1,3}\.\d{1,3}(\s|$)")


@dataclass(frozen=True, slots=True)
class TlsFiles:
    cert: Path
    key: Path


class RelayState:
    """What every session of a process's relay shares: the service, the TLS context, and
    the sessions open per address and per key."""

    def __init__(self, settings: Settings, relay: RelayService) -> None:
        self.settings = settings
        self.relay = relay
        self.hostname = settings.smtp_hostname or socket.getfqdn()
        self.tls_files = (
            TlsFiles(settings.smtp_tls_cert, settings.smtp_tls_key)
            if settings.smtp_tls_cert and settings.smtp_tls_key
            else None
        )
        self.tls_context: ssl.SSLContext | None = None
        if self.tls_files is not None:
            self.tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            # At start, a certificate that cannot be read stops the relay.
            self.tls_context.load_cert_chain(self.tls_files.cert, self.tls_files.key)
        self.per_address: Counter[str] = Counter()
        self.per_key: Counter[int] = Counter()
        self.flow = FlowControl(settings, relay.database)

    def reload_certificate(self) -> None:
        """Read the certificate and key again (SIGHUP): connections from now on use them;
        if they cannot be read, the ones in use stay."""
        if self.tls_files is None or self.tls_context is None:
            return
        try:
            self.tls_context.load_cert_chain(self.tls_files.cert, self.tls_files.key)
        except (OSError, ssl.SSLError) as exc:
            log.error("cannot read the relay's certificate again, kept the old one: %s", exc)
            return
        log.info("relay certificate read again from %s", self.tls_files.cert)


class RelaySessionState(Session):
    """aiosmtpd's session, without the deprecation warning it logs at every AUTH (it sets
    ``login_data`` itself)."""

    login_data = None


class RelayEnvelope(Envelope):
    """aiosmtpd's envelope, with whom its message is sent as (from MAIL FROM on)."""

    def __init__(self) -> None:
        super().__init__()
        self.key: ApiKey | None = None
        self.account: SendingAccount | None = None


class RelaySession(SMTP):
    """One client connection."""

    def __init__(self, state: RelayState, *, implicit_tls: bool) -> None:
        settings = state.settings
        plaintext_auth = settings.smtp_allow_plaintext_auth
        super().__init__(
            _Handler(),
            data_size_limit=settings.max_body_bytes,
            enable_SMTPUTF8=False,
            decode_data=False,
            hostname=state.hostname,
            ident=IDENT,
            tls_context=None if implicit_tls else state.tls_context,
            require_starttls=False,
            timeout=settings.smtp_idle_timeout,
            auth_required=False,  # checked at MAIL FROM: a trusted network needs none
            auth_require_tls=not (plaintext_auth or implicit_tls),
            auth_exclude_mechanism=["CRAM-MD5"],
        )
        self.state = state
        self.implicit_tls = implicit_tls
        self.address = ""
        self.authenticated_as: Sender | None = None  # by AUTH
        self.trusted_as: Sender | None = None  # by the client's network
        self.counted_key: int | None = None
        self._deadline: asyncio.TimerHandle | None = None

    def _create_envelope(self) -> Envelope:
        return RelayEnvelope()

    def _create_session(self) -> Session:
        return RelaySessionState(self.loop)

    @property
    def sender(self) -> Sender | None:
        return self.authenticated_as or self.trusted_as

    @property
    def encrypted(self) -> bool:
        return self.implicit_tls or self._tls_protocol is not None

    # -- the connection -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self.transport is None
        super().connection_made(transport)
        if first:
            peer = transport.get_extra_info("peername")
            self.address = peer[0] if isinstance(peer, tuple) else str(peer or "unknown")
            self.state.per_address[self.address] += 1
        else:  # after STARTTLS, what was said before it counts no more (RFC 3207 4.2)
            self._forget_key()

    def _forget_key(self) -> None:
        self.authenticated_as = None
        if self.counted_key is not None:
            _release(self.state.per_key, self.counted_key)
            self.counted_key = None

    def connection_lost(self, error: Exception | None) -> None:
        self._cancel_deadline()
        if self.address:
            _release(self.state.per_address, self.address)
            self.address = ""
        self._forget_key()
        super().connection_lost(error)

    async def _handle_client(self) -> None:
        refusal = self._refuse_connection()
        if refusal is None:
            try:
                self.trusted_as = await self.state.relay.trusted_sender(self.address)
            except Refusal as exc:
                refusal = exc.reply
        if refusal is not None:
            await self.push(refusal)
            assert self.transport is not None
            self.transport.close()
            return
        await super()._handle_client()

    def _refuse_connection(self) -> str | None:
        throttled = self.state.relay.throttled(self.address)
        if throttled is not None:
            return throttled
        if self.state.per_address[self.address] > self.state.settings.smtp_connections_per_address:
            return "421 4.7.0 too many connections from this address; try again later"
        return None

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """The path of MAIL FROM / RCPT TO and what follows it. The usual ``<local@domain>``
        is read with one regular expression; anything else goes to aiosmtpd's parser (Python's
        RFC 5322 header parser, which also defines a class at every call: a sixth of the
        relay's time for a plain message)."""
        simple = _SIMPLE_PATH.match(arg)
        if simple is not None:
            return simple.group(1), simple.group(2)
        return super()._getaddr(arg)

    async def push(self, status: AnyStr) -> None:
        line = status.decode() if isinstance(status, bytes) else status
        await super().push(_enhanced(line, self.state.settings.max_body_bytes))

    # -- AUTH (PLAIN, LOGIN) ------------------------------------------------------------------

    async def auth_PLAIN(self, _: Any, args: list[str]) -> AuthResult:
        response = await self.challenge_auth("") if len(args) == 1 else await self._decode(args[1])
        if not isinstance(response, bytes):
            return AuthResult(success=False, handled=True)
        parts = response.split(b"\x00")
        if len(parts) != 3:
            await self.push("501 5.5.2 cannot split the credentials")
            return AuthResult(success=False, handled=True)
        return await self._check(parts[2])

    async def auth_LOGIN(self, _: Any, args: list[str]) -> AuthResult:
        if len(args) == 1:
            login = await self.challenge_auth(self.AuthLoginUsernameChallenge)
            if not isinstance(login, bytes):
                return AuthResult(success=False, handled=True)
        elif await self._decode(args[1]) is None:
            return AuthResult(success=False, handled=True)
        password = await self.challenge_auth(self.AuthLoginPasswordChallenge)
        if not isinstance(password, bytes):
            return AuthResult(success=False, handled=True)
        return await self._check(password)

    async def _decode(self, text: str) -> bytes | None:
        try:
            return base64.b64decode(text.encode(), validate=True)
        except (binascii.Error, ValueError):
            await self.push("501 5.5.2 cannot decode base64")
            return None

    async def _check(self, password: bytes) -> AuthResult:
        try:
            sender = await self.state.relay.authenticate(
                password.decode("utf-8", "replace").strip(), self.address
            )
        except Refusal as exc:
            await self.push(exc.reply)
            return AuthResult(success=False, handled=True)
        per_key = self.state.per_key
        if per_key[sender.key_id] >= self.state.settings.smtp_connections_per_key:
            await self.push("454 4.7.0 too many sessions with this API key; try again later")
            return AuthResult(success=False, handled=True)
        per_key[sender.key_id] += 1
        self.counted_key = sender.key_id
        self.authenticated_as = sender
        return AuthResult(success=True, auth_data=sender)

    # -- a message's deadline -----------------------------------------------------------------

    def start_deadline(self) -> None:
        self._cancel_deadline()
        self._deadline = self.loop.call_later(
            self.state.settings.smtp_message_timeout, self._too_long
        )

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_long(self) -> None:
        log.info("%s: a message took too long; closing the session", self.address)
        transport = self.transport
        if isinstance(transport, asyncio.WriteTransport):
            transport.write(b"421 4.4.2 the message took too long; closing\r\n")
        if transport is not None:
            transport.close()

    def received_field(self, session: Session) -> str:
        """The trace field the relay adds to the top of a message (RFC 5321 4.4)."""
        protocol = (
            "ESMTP" + ("S" if self.encrypted else "") + ("A" if session.authenticated else "")
        )
        helo = session.host_name or "unknown"
        now = format_datetime(utcnow().replace(tzinfo=UTC))
        return (
            f"Received: from {helo} ([{self.address}])\r\n\tby {self.state.hostname} "
            f"(MailPass) with {protocol};\r\n\t{now}"
        )


class _Handler:
    """aiosmtpd's hooks: each command's decision, asked of ``RelayService``."""

    async def handle_EHLO(
        self,
        server: RelaySession,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        # The last line ("250 HELP") stays last.
        return [*responses[:-1], "250-PIPELINING", "250-ENHANCEDSTATUSCODES", responses[-1]]

    async def handle_MAIL(
        self,
        server: RelaySession,
        session: Session,
        envelope: RelayEnvelope,
        address: str,
        options: list[str],
    ) -> str:
        if server.sender is None:
            return "530 5.7.0 authentication required: AUTH with an API key as the password"
        await server.state.flow.wait()
        try:
            key, account = await server.state.relay.start_message(server.sender, address)
        except Refusal as exc:
            return exc.reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        envelope.key, envelope.account = key, account
        server.start_deadline()
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self,
        server: RelaySession,
        session: Session,
        envelope: RelayEnvelope,
        address: str,
        options: list[str],
    ) -> str:
        assert envelope.key is not None
        assert envelope.account is not None
        try:
            recipient = await server.state.relay.check_recipient(
                envelope.key, envelope.account, address, len(envelope.rcpt_tos)
            )
        except Refusal as exc:
            return exc.reply
        envelope.rcpt_tos.append(recipient)
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 OK"

    async def handle_RSET(self, server: RelaySession, session: Session, envelope: Envelope) -> str:
        server._cancel_deadline()
        return "250 2.0.0 OK"

    async def handle_DATA(
        self, server: RelaySession, session: Session, envelope: RelayEnvelope
    ) -> str:
        server._cancel_deadline()
        assert envelope.key is not None
        assert envelope.account is not None
        content = envelope.original_content or b""
        try:
            accepted = await server.state.relay.accept(
                envelope.key,
                envelope.account,
                list(envelope.rcpt_tos),
                content,
                server.received_field(session),
            )
        except Refusal as exc:
            RELAY_MESSAGES.labels("deferred" if exc.reply[:1] == "4" else "refused").inc()
            return exc.reply
        except Exception:  # a bug: logged here; the client hears no traceback, and retries
            log.exception("a message from %s could not be taken", server.address)
            RELAY_MESSAGES.labels("deferred").inc()
            return "451 4.3.0 the message could not be taken; try again later"
        RELAY_MESSAGES.labels("accepted").inc()
        reply = f"250 2.0.0 OK {accepted.message_id}"
        if accepted.ignored:
            reply += " (not acted on: " + ", ".join(accepted.ignored) + ")"
        return reply


def _release(counter: Counter[Any], name: Any) -> None:
    counter[name] -= 1
    if counter[name] <= 0:
        del counter[name]


def _enhanced(line: str, max_bytes: int) -> str:
    """``line`` with an enhanced status code where aiosmtpd gave none (not on the greeting,
    EHLO's lines, or 334/354, which take none)."""
    code = line[:3]
    if line.startswith("552") and not _HAS_ENHANCED.match(line):
        return f"552 5.3.4 the message is too big: at most {max_bytes} bytes"
    if (
        len(line) < 4
        or line[3] != " "
        or code not in _ENHANCED
        or _HAS_ENHANCED.match(line)
        or line == "250 HELP"
    ):
        return line
    return f"{code} {_ENHANCED[code]} {line[4:]}"


@dataclass
class RelayListeners:
    """The relay's listening servers in this process."""

    servers: list[asyncio.Server]
    state: RelayState
    reloads: bool = False  # SIGHUP reads the certificate again

    async def close(self) -> None:
        await self.state.flow.stop()
        if self.reloads:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        for server in self.servers:
            server.close()
        for server in self.servers:
            await server.wait_closed()


async def start_relay(
    settings: Settings,
    relay: RelayService,
    host: str,
    *,
    smtp_port: int | None,
    smtps_port: int | None,
    reuse_port: bool = False,
) -> RelayListeners:
    """Listen for submissions on ``smtp_port`` (STARTTLS) and ``smtps_port`` (implicit TLS);
    with ``reuse_port``, beside the other processes of ``serve --processes``."""
    state = RelayState(settings, relay)
    if smtps_port is not None and state.tls_context is None:
        raise ValueError("the SMTPS port needs MAILPASS_SMTP_TLS_CERT and MAILPASS_SMTP_TLS_KEY")
    loop = asyncio.get_running_loop()
    servers: list[asyncio.Server] = []
    try:
        if smtp_port is not None:
            servers.append(
                await loop.create_server(
                    lambda: RelaySession(state, implicit_tls=False),
                    host,
                    smtp_port,
                    reuse_port=reuse_port or None,
                )
            )
        if smtps_port is not None:
            servers.append(
                await loop.create_server(
                    lambda: RelaySession(state, implicit_tls=True),
                    host,
                    smtps_port,
                    ssl=state.tls_context,
                    reuse_port=reuse_port or None,
                )
            )
    except BaseException:
        for server in servers:
            server.close()
        raise
    if state.tls_context is None and not settings.smtp_allow_plaintext_auth:
        log.warning(
            "the SMTP relay has no certificate (MAILPASS_SMTP_TLS_CERT/KEY) and plain-text AUTH "
            "is off: only MAILPASS_SMTP_TRUSTED_NETWORKS can send through it"
        )
    state.flow.start()
    reloads = False
    if state.tls_context is not None:
        try:
            loop.add_signal_handler(signal.SIGHUP, state.reload_certificate)
            reloads = True
        except (RuntimeError, ValueError):  # not the main thread: nothing to reload on
            log.info("the relay's certificate is not read again on SIGHUP in this thread")
    return RelayListeners(servers, state, reloads)


@dataclass(frozen=True, slots=True)
class RelayListen:
    """Where a process's relay listens (``serve --smtp-port/--smtps-port``)."""

    host: str
    smtp_port: int | None = None
    smtps_port: int | None = None
    reuse_port: bool = False

    async def start(self, settings: Settings, relay: RelayService) -> RelayListeners:
        return await start_relay(
            settings,
            relay,
            self.host,
            smtp_port=self.smtp_port,
            smtps_port=self.smtps_port,
            reuse_port=self.reuse_port,
        )
