"""One SMTP connection: aiosmtplib's client, noting how far its transaction got (and, for a
probe, the talk), and sending MAIL, RCPT and DATA pipelined when the server offers it.

``open_client`` connects, upgrades to TLS and authenticates as the endpoint asks, turning what
goes wrong into an ``SmtpFailure`` (``failures.classify_failure``).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import ssl
import time
from collections.abc import Sequence
from typing import Literal, cast

import aiosmtplib
from aiosmtplib.protocol import normalize_message_line_endings
from aiosmtplib.typing import Default

from mailpass.core.client_ip import IPNetwork, in_networks
from mailpass.providers.smtp.endpoint import SmtpEndpoint
from mailpass.providers.smtp.errors import SmtpFailure, config_failure
from mailpass.providers.smtp.failures import classify_failure
from mailpass.providers.smtp.pipelining import PipelinedReplies, refusals

__all__ = [
    "QUIT_TIMEOUT",
    "SmtpClient",
    "connect_within",
    "mail_options",
    "open_client",
    "quit_client",
]

QUIT_TIMEOUT = 5.0  # seconds; QUIT is a courtesy on the way out, not worth a long wait

HIDDEN = "<credentials hidden>"
COMMAND_BREAKING = re.compile(rb"[\x00-\x1f\x7f]")  # would end or corrupt a command line
Command = tuple[bytes, ...]  # an SMTP command's words


class SmtpClient(aiosmtplib.SMTP):
    """An aiosmtplib client that notes how far its transaction got, and optionally the talk.

    (The overrides keep aiosmtplib's signatures, ``timeout`` arguments included.)

    ``send_envelope`` does MAIL, RCPT and DATA in one call; the pool needs to know whether DATA
    started (past that point a retry could duplicate the mail) and whether an envelope is still
    open on the server (then the connection needs RSET before it can be reused).
    """

    def __init__(
        self,
        endpoint: SmtpEndpoint,
        *,
        tls_context: ssl.SSLContext | None,
        local_hostname: str | None,
        transcript: list[str] | None,
    ) -> None:
        super().__init__(
            hostname=endpoint.host,
            port=endpoint.port,
            local_hostname=local_hostname,
            timeout=endpoint.timeout,
            use_tls=endpoint.security == "tls",
            start_tls=False,  # open_client upgrades, so that a missing STARTTLS is an error
            tls_context=tls_context,
        )
        self.transcript = transcript
        self.envelope_open = False
        self.data_started = False
        self.data_reply: aiosmtplib.SMTPResponse | None = None
        self.idle_since = 0.0  # time.monotonic() when it was last put back in the pool
        self._in_auth_exchange = False

    def note_reply(self, code: int, message: str) -> None:
        if self.transcript is None:
            return
        lines = message.split("\n") or [""]
        for index, line in enumerate(lines):
            separator = " " if index == len(lines) - 1 else "-"
            self.transcript.append(f"S: {code}{separator}{line}".rstrip())

    def note_command(self, *args: bytes) -> None:
        if self.transcript is None:
            return
        if args and args[0].upper() == b"AUTH":
            shown = b" ".join(args[:2]).decode("ascii", "replace")
            self.transcript.append(f"C: {shown} {HIDDEN}" if len(args) > 2 else f"C: {shown}")
        elif self._in_auth_exchange:
            self.transcript.append(f"C: {HIDDEN}")  # an AUTH continuation: user name or secret
        else:
            self.transcript.append("C: " + b" ".join(args).decode("ascii", "replace"))

    async def execute_command(
        self,
        *args: bytes,
        timeout: float | Literal[Default.token] | None = Default.token,  # noqa: ASYNC109
    ) -> aiosmtplib.SMTPResponse:
        self.note_command(*args)
        response = await super().execute_command(*args, timeout=timeout)
        # 334 asks for the next piece of an AUTH exchange, which must stay out of the transcript.
        self._in_auth_exchange = response.code == aiosmtplib.SMTPStatus.auth_continue
        self.note_reply(response.code, response.message)
        return response

    async def data(
        self,
        message: str | bytes,
        /,
        *,
        timeout: float | Literal[Default.token] | None = Default.token,  # noqa: ASYNC109
    ) -> aiosmtplib.SMTPResponse:
        self.data_started = True
        response = await super().data(message, timeout=timeout)
        self.envelope_open = False  # a completed DATA ends the transaction on the server
        self.data_reply = response
        return response

    async def send_envelope(
        self, sender: str, recipients: Sequence[str], data: bytes, mail_options: list[str]
    ) -> tuple[dict[str, aiosmtplib.SMTPResponse], str]:
        """MAIL, RCPT for each recipient and DATA: ``sendmail`` without its address parsing,
        pipelined when the server offers it.

        ``sendmail`` runs every address through ``email.utils.parseaddr`` twice (to check it,
        then to quote it), ~50 us each here; ours were validated when the message was accepted
        and are plain ASCII (``SmtpTransport.send`` checks). What is refused, and the RSET after
        a refused transaction, are as ``sendmail`` does them.
        """
        message = as_transmitted(data)
        options = [option.encode() for option in mail_options]
        if self.supports_extension("size"):
            # RFC 1870: octets as transmitted, with CRLF line endings.
            options.insert(0, b"SIZE=%d" % len(message))
        # Each command as its words, as aiosmtplib's execute_command takes them.
        commands = [(b"MAIL", b"FROM:<" + sender.encode("ascii") + b">", *options)]
        commands += [(b"RCPT", b"TO:<" + rcpt.encode("ascii") + b">") for rcpt in recipients]
        if any(COMMAND_BREAKING.search(word) for command in commands for word in command):
            raise ValueError("Command arg contains a prohibited control character")
        transaction = self._pipelined if self.supports_extension("pipelining") else self._one_by_one
        try:
            self.envelope_open = True
            refused, response = await transaction(sender, recipients, commands, message)
        except (aiosmtplib.SMTPResponseException, aiosmtplib.SMTPRecipientsRefused):
            # The failure that matters is the one being raised, not one of the RSET.
            with contextlib.suppress(ConnectionError, aiosmtplib.SMTPResponseException):
                await self.rset()
            raise
        errors = {
            error.recipient: aiosmtplib.SMTPResponse(error.code, error.message) for error in refused
        }
        return errors, response.message

    async def _one_by_one(
        self, sender: str, recipients: Sequence[str], commands: list[Command], message: bytes
    ) -> tuple[list[aiosmtplib.SMTPRecipientRefused], aiosmtplib.SMTPResponse]:
        """The transaction a command at a time, each waiting for its reply."""
        mail = await self.execute_command(*commands[0])
        if mail.code != aiosmtplib.SMTPStatus.completed:
            raise aiosmtplib.SMTPSenderRefused(mail.code, mail.message, sender)
        answers = [await self.execute_command(*command) for command in commands[1:]]
        refused = refusals(recipients, answers)
        if len(refused) == len(recipients):
            raise aiosmtplib.SMTPRecipientsRefused(refused)
        return refused, await self.data(message)

    async def _pipelined(
        self, sender: str, recipients: Sequence[str], commands: list[Command], message: bytes
    ) -> tuple[list[aiosmtplib.SMTPRecipientRefused], aiosmtplib.SMTPResponse]:
        """MAIL, the RCPTs and DATA in one write; then the message, once DATA got 354."""
        smtp_protocol = self.protocol
        # (uvloop's transports are not asyncio.WriteTransport subclasses, but have its methods.)
        transport = cast(asyncio.WriteTransport | None, self.transport)
        if transport is None or smtp_protocol is None or transport.is_closing():
            raise aiosmtplib.SMTPServerDisconnected("Server not connected")
        timeout = self.timeout
        commands = [*commands, (b"DATA",)]
        for command in commands:
            self.note_command(*command)
        replies = PipelinedReplies(smtp_protocol)
        transport.set_protocol(replies)
        try:
            transport.write(b"".join(b" ".join(command) + b"\r\n" for command in commands))
            answers = [await replies.next(timeout) for _command in commands]
            for answer in answers:
                self.note_reply(answer.code, answer.message)
            mail, data = answers[0], answers[-1]
            refused = refusals(recipients, answers[1:-1])
            deliverable = mail.code == aiosmtplib.SMTPStatus.completed and len(refused) < len(
                recipients
            )
            if data.code == aiosmtplib.SMTPStatus.start_input:
                if not deliverable:
                    # The server took DATA although nothing can be delivered: end it empty
                    # (RFC 2920 3.1).
                    transport.write(b".\r\n")
                    await replies.next(timeout)
                else:
                    self.data_started = True
                    transport.write(dot_stuffed(message) + b".\r\n")
                    final = await replies.next(timeout)
                    self.note_reply(final.code, final.message)
                    if final.code != aiosmtplib.SMTPStatus.completed:
                        raise aiosmtplib.SMTPDataError(final.code, final.message)
                    self.envelope_open = False  # a completed DATA ends the transaction
                    self.data_reply = final
                    return refused, final
        finally:
            if not transport.is_closing():
                transport.set_protocol(smtp_protocol)
        if mail.code != aiosmtplib.SMTPStatus.completed:
            raise aiosmtplib.SMTPSenderRefused(mail.code, mail.message, sender)
        if len(refused) == len(recipients):
            raise aiosmtplib.SMTPRecipientsRefused(refused)
        raise aiosmtplib.SMTPDataError(data.code, data.message)

    async def rset(
        self,
        *,
        timeout: float | Literal[Default.token] | None = Default.token,  # noqa: ASYNC109
    ) -> aiosmtplib.SMTPResponse:
        response = await super().rset(timeout=timeout)
        self.envelope_open = False
        return response


def as_transmitted(data: bytes) -> bytes:
    """``data`` with CRLF line endings and ending in one, as DATA carries it: what aiosmtplib's
    ``normalize_message_line_endings`` makes. That is a regex pass over the whole message, a
    quarter of the time spent sending a 140 KB one; every message MailPass composes has its
    CRLFs already, which three counts (memchr speed) confirm, so the pass is only for others."""
    crlf = data.count(b"\r\n")
    if data.count(b"\n") != crlf or data.count(b"\r") != crlf:
        return normalize_message_line_endings(data)
    return data if data.endswith(b"\r\n") else data + b"\r\n"


def dot_stuffed(message: bytes) -> bytes:
    """RFC 5321 4.5.2 for a message with CRLF line endings only (``as_transmitted``): a line
    that starts with "." gets another. One ``bytes.replace``, where a multiline ``^\\.`` regex
    tested every position of the message (another quarter of sending a large one)."""
    stuffed = message.replace(b"\r\n.", b"\r\n..")
    return b"." + stuffed if stuffed.startswith(b".") else stuffed


async def open_client(
    endpoint: SmtpEndpoint,
    tls_context: ssl.SSLContext | None,
    local_hostname: str | None,
    transcript: list[str] | None = None,
) -> SmtpClient:
    """A connected client, past STARTTLS and AUTH as the endpoint asks; or ``SmtpFailure``."""
    client = SmtpClient(
        endpoint, tls_context=tls_context, local_hostname=local_hostname, transcript=transcript
    )
    step = "connect"
    try:
        try:
            if endpoint.networks is None and not endpoint.addresses:
                greeting = await client.connect(timeout=endpoint.connect_timeout)
            else:
                started = time.monotonic()
                sock = await connect_within(endpoint, endpoint.networks)
                left = max(endpoint.connect_timeout - (time.monotonic() - started), 0.001)
                greeting = await client.connect(timeout=left, sock=sock, port=None)
        except aiosmtplib.SMTPConnectResponseError as exc:
            if exc.code != aiosmtplib.SMTPStatus.invalid_response:  # not SMTP: not shown
                client.note_reply(exc.code, exc.message)
            raise
        client.note_reply(greeting.code, greeting.message)
        step = "EHLO"
        await client.ehlo()
        offered = client.supports_extension("starttls")
        if endpoint.security == "starttls" or (endpoint.security == "opportunistic" and offered):
            if not offered:
                raise config_failure(f"{endpoint.address} does not offer STARTTLS")
            step = "STARTTLS"
            client.note_command(b"STARTTLS")
            try:
                response = await client.starttls()
            except aiosmtplib.SMTPResponseException as exc:
                client.note_reply(exc.code, exc.message)
                raise
            client.note_reply(response.code, response.message)
            step = "EHLO"
            await client.ehlo()  # RFC 3207: what the server offers may change under TLS
        if endpoint.username is not None:
            if not client.supports_extension("auth"):
                raise config_failure(f"{endpoint.address} does not offer AUTH")
            step = "AUTH"
            await client.login(endpoint.username, endpoint.password or "")
    except SmtpFailure:  # ours, already described (and a ValueError or OSError too)
        client.close()
        raise
    except (aiosmtplib.SMTPException, OSError, ValueError) as exc:
        client.close()
        raise classify_failure(exc, endpoint, step) from exc
    except BaseException:  # a cancellation
        client.close()
        raise
    return client


async def connect_within(
    endpoint: SmtpEndpoint, networks: tuple[IPNetwork, ...] | None
) -> socket.socket:
    """A socket connected to the first of the endpoint's addresses (``addresses``, else its
    host's) inside ``networks`` (None: anywhere).

    The host is resolved here and the socket connected to the very address that was checked,
    so that a name that resolves elsewhere the second time (DNS rebinding) gains nothing.
    """
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(endpoint.connect_timeout):
        found = []
        for host in endpoint.addresses or (endpoint.host,):
            found += await loop.getaddrinfo(host, endpoint.port, type=socket.SOCK_STREAM)
        inside = [
            info for info in found if networks is None or in_networks(str(info[4][0]), networks)
        ]
        if not inside:
            addresses = ", ".join(sorted({str(info[4][0]) for info in found}))
            raise config_failure(
                f"{endpoint.host} is at {addresses}, outside the networks this installation "
                "sends to (MAILPASS_PROVIDER_NETWORKS)"
            )
        family, kind, proto, _name, address = inside[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            await loop.sock_connect(sock, address)
        except BaseException:
            sock.close()
            raise
    return sock


async def quit_client(client: SmtpClient) -> None:
    try:
        await client.quit(timeout=QUIT_TIMEOUT)
    except (aiosmtplib.SMTPException, OSError):
        pass  # we are leaving either way
    finally:
        client.close()


def mail_options(client: SmtpClient, data: bytes) -> list[str]:
    # RFC 6152: 8-bit content must be declared, and only to a server that offers 8BITMIME.
    if not data.isascii() and client.supports_extension("8bitmime"):
        return ["BODY=8BITMIME"]
    return []
