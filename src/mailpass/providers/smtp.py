"""Delivery to one SMTP server through aiosmtplib, over a small pool of reused connections.

Failures become ``TransientDeliveryError`` (4xx, timeouts, dropped connections) or
``PermanentDeliveryError`` (5xx, refused authentication, TLS verification, configuration), each
carrying the server's reply; ``smtp_failures`` holds the rules.

A reused connection that turns out to be dead before DATA (the server timed it out while it
sat in the pool) is replaced once, transparently. Nothing is retried once DATA has started:
the server may already hold the message, and a second attempt could deliver it twice.

To a server that offers PIPELINING (RFC 2920; Postfix and Exim, among many, offer it),
MAIL, every RCPT and DATA go out in one write and their replies are read together: a message
costs two round trips instead of three plus one per recipient. aiosmtplib reads one reply per
command it sent and cannot do this, so while a transaction is pipelined, ``_Replies`` stands in
for its protocol on the same connection; connecting, TLS, AUTH, RSET and QUIT stay aiosmtplib's.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, cast, get_args

import aiosmtplib
from aiosmtplib.protocol import normalize_message_line_endings
from aiosmtplib.typing import Default

from mailpass.providers.smtp_failures import (
    SmtpFailure,
    classify_failure,
    config_failure,
    is_dead_connection,
    recipients_failure,
    reply_text,
)
from mailpass.providers.transport import DeliveryResult, PermanentDeliveryError

__all__ = [
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_TIMEOUT",
    "ProbeError",
    "SmtpEndpoint",
    "SmtpSecurity",
    "SmtpTransport",
    "probe",
]

SmtpSecurity = Literal["starttls", "tls", "none"]
SECURITY_MODES: tuple[str, ...] = get_args(SmtpSecurity)

DEFAULT_TIMEOUT = 30.0  # seconds, for connecting and for each SMTP command
DEFAULT_MAX_CONNECTIONS = 4  # open connections per transport
# seconds a pooled connection may sit unused; servers commonly drop idle clients after 60-300 s,
# so staying well below that keeps most reuses from meeting a connection the server has closed.
DEFAULT_IDLE_TIMEOUT = 30.0
QUIT_TIMEOUT = 5.0  # seconds; QUIT is a courtesy on the way out, not worth a long wait

_HIDDEN = "<credentials hidden>"
_RCPT_ACCEPTED = (aiosmtplib.SMTPStatus.completed, aiosmtplib.SMTPStatus.will_forward)
_LINE_START_PERIOD = re.compile(rb"(?m)^\.")  # dot-stuffing (RFC 5321 4.5.2)
_COMMAND_BREAKING = re.compile(rb"[\x00-\x1f\x7f]")  # would end or corrupt a command line
MAX_REPLY_LENGTH = 32768  # bytes of one reply, continuation lines included
Command = tuple[bytes, ...]  # an SMTP command's words


@dataclass(frozen=True, slots=True)
class SmtpEndpoint:
    """Where and how to reach one SMTP server.

    ``security``: ``"tls"`` is implicit TLS (port 465), ``"starttls"`` requires STARTTLS
    (port 587), ``"none"`` is plain text. Certificates are always verified; ``ca_file`` adds
    a CA bundle (an internal CA) to the system's trusted roots.
    """

    host: str
    port: int
    security: SmtpSecurity = "starttls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = DEFAULT_TIMEOUT  # seconds, per connection attempt and per command
    ca_file: str | Path | None = None
    local_hostname: str | None = None  # the name we give in EHLO; default: this host's FQDN

    def __post_init__(self) -> None:
        if self.security not in SECURITY_MODES:
            raise ValueError(
                f"security must be one of {', '.join(SECURITY_MODES)}, not {self.security!r}"
            )
        if not 0 < self.port < 65536:
            raise ValueError(f"port must be between 1 and 65535, not {self.port}")
        if self.timeout <= 0:
            raise ValueError(f"timeout must be positive, not {self.timeout}")
        # Both end up on a command line: whitespace or control characters would break it.
        for name, value in (("host", self.host), ("local_hostname", self.local_hostname)):
            if value is not None and (not value or not value.isprintable() or " " in value):
                raise ValueError(f"{name} must be a host name or address, not {value!r}")

    @property
    def address(self) -> str:
        """``host:port`` as people write it, with IPv6 literals bracketed."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


class ProbeError(Exception):
    """``probe`` failed. ``str()`` is one line for the CLI; ``transcript`` is the talk so far."""

    def __init__(self, message: str, transcript: list[str]) -> None:
        super().__init__(message)
        self.transcript = transcript


class _Client(aiosmtplib.SMTP):
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
            start_tls=False,  # upgraded explicitly in _open, so a missing STARTTLS is an error
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
            self.transcript.append(f"C: {shown} {_HIDDEN}" if len(args) > 2 else f"C: {shown}")
        elif self._in_auth_exchange:
            self.transcript.append(f"C: {_HIDDEN}")  # an AUTH continuation: user name or secret
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
        message = normalize_message_line_endings(data)
        options = [option.encode() for option in mail_options]
        if self.supports_extension("size"):
            # RFC 1870: octets as transmitted, with CRLF line endings.
            options.insert(0, b"SIZE=%d" % len(message))
        # Each command as its words, as aiosmtplib's execute_command takes them.
        commands = [(b"MAIL", b"FROM:<" + sender.encode("ascii") + b">", *options)]
        commands += [(b"RCPT", b"TO:<" + rcpt.encode("ascii") + b">") for rcpt in recipients]
        if any(_COMMAND_BREAKING.search(word) for command in commands for word in command):
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
        refused = _refusals(recipients, answers)
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
        replies = _Replies(smtp_protocol)
        transport.set_protocol(replies)
        try:
            transport.write(b"".join(b" ".join(command) + b"\r\n" for command in commands))
            answers = [await replies.next(timeout) for _command in commands]
            for answer in answers:
                self.note_reply(answer.code, answer.message)
            mail, data = answers[0], answers[-1]
            refused = _refusals(recipients, answers[1:-1])
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
                    transport.write(_LINE_START_PERIOD.sub(b"..", message) + b".\r\n")
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


def _refusals(
    recipients: Sequence[str], answers: Sequence[aiosmtplib.SMTPResponse]
) -> list[aiosmtplib.SMTPRecipientRefused]:
    """The recipients whose RCPT was not accepted, with the server's reply to each."""
    return [
        aiosmtplib.SMTPRecipientRefused(answer.code, answer.message, recipient)
        for recipient, answer in zip(recipients, answers, strict=True)
        if answer.code not in _RCPT_ACCEPTED
    ]


class _Replies(asyncio.Protocol):
    """Reads the replies to pipelined commands, however the server splits or joins them, while
    a transaction borrows the connection from aiosmtplib's protocol (``_Client._pipelined``).

    A lost connection is passed on to that protocol, so that aiosmtplib knows of it too; so is
    the transport's flow control.
    """

    def __init__(self, smtp_protocol: asyncio.BaseProtocol) -> None:
        self._smtp_protocol = smtp_protocol
        self._buffer = bytearray()
        self._replies: deque[aiosmtplib.SMTPResponse] = deque()
        self._error: Exception | None = None
        self._waiter: asyncio.Future[None] | None = None

    async def next(self, timeout: float | None) -> aiosmtplib.SMTPResponse:  # noqa: ASYNC109
        """The next reply, waiting at most ``timeout`` seconds for it."""
        while not self._replies:
            if self._error is not None:
                raise self._error
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(self._waiter, timeout)
            except TimeoutError:
                raise aiosmtplib.SMTPReadTimeoutError(
                    "Timed out waiting for server response"
                ) from None
        return self._replies.popleft()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        try:
            while (reply := self._parse()) is not None:
                self._replies.append(reply)
        except aiosmtplib.SMTPResponseException as exc:
            self._error = exc
        self._wake()

    def _parse(self) -> aiosmtplib.SMTPResponse | None:
        """The first complete reply in the buffer (taken out of it), if there is one."""
        lines: list[bytes] = []
        offset = 0
        while (end := self._buffer.find(b"\n", offset)) != -1:
            line = bytes(self._buffer[offset : end + 1])
            offset = end + 1
            code = line[:3]
            if not code.isdigit() or line[3:4] not in (b" ", b"-", b"\r", b"\n"):
                raise aiosmtplib.SMTPResponseException(
                    aiosmtplib.SMTPStatus.invalid_response,
                    "Malformed SMTP response line: " + line.decode("utf-8", "replace"),
                )
            lines.append(line[4:].strip(b" \t\r\n"))
            if line[3:4] != b"-":
                del self._buffer[:offset]
                text = b"\n".join(lines).decode("utf-8", "surrogateescape")
                return aiosmtplib.SMTPResponse(int(code), text)
        if len(self._buffer) > MAX_REPLY_LENGTH:
            raise aiosmtplib.SMTPResponseException(
                aiosmtplib.SMTPStatus.invalid_response, "Response too long"
            )
        return None

    def eof_received(self) -> bool:
        return False  # the transport closes, and connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        if self._error is None:
            self._error = aiosmtplib.SMTPServerDisconnected("Connection lost")
            self._error.__cause__ = exc
        self._wake()
        self._smtp_protocol.connection_lost(exc)

    def pause_writing(self) -> None:
        self._smtp_protocol.pause_writing()

    def resume_writing(self) -> None:
        self._smtp_protocol.resume_writing()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class SmtpTransport:
    """Sends through one SMTP server, reusing up to ``max_connections`` connections.

    Safe for any number of concurrent ``send`` calls on one event loop: each holds a
    connection for the length of its transaction and waits for one to free up beyond
    ``max_connections``. After ``close()`` sends still work, but their connections are closed
    after use instead of being pooled.
    """

    def __init__(
        self,
        endpoint: SmtpEndpoint,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    ) -> None:
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, not {max_connections}")
        if idle_timeout < 0:
            raise ValueError(f"idle_timeout must not be negative, not {idle_timeout}")
        self.endpoint = endpoint
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        # A slot is held by each send for as long as it uses a connection. Connections are only
        # opened by a slot holder that found the pool empty, so open connections never exceed
        # max_connections.
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: list[_Client] = []  # most recently used last
        self._reaper: asyncio.TimerHandle | None = None
        self._tls_context: ssl.SSLContext | None = None
        # Resolved once (aiosmtplib asks the resolver for our FQDN on every connect otherwise).
        self._local_hostname = endpoint.local_hostname
        self._closed = False

    async def send(
        self, envelope_from: str, recipients: Sequence[str], data: bytes
    ) -> DeliveryResult:
        """Deliver finished MIME bytes; raise ``DeliveryError`` if no recipient accepted them."""
        if not recipients:
            raise ValueError("send() needs at least one recipient")
        envelope_to = list(recipients)
        for role, address in [("from", envelope_from)] + [("to", rcpt) for rcpt in envelope_to]:
            if not address.isascii():
                # It would take SMTPUTF8, and mailboxes that need it are rare enough that
                # MailPass refuses them when the message is accepted; this is the backstop.
                raise PermanentDeliveryError(
                    f"cannot send {role} {address!r}: non-ASCII addresses need SMTPUTF8"
                )
        async with self._slots:
            client = self._take_idle()
            if client is not None:
                try:
                    return await self._transact(client, envelope_from, envelope_to, data, True)
                except _StaleConnection:
                    pass  # it died while pooled; the mail never reached the server
            try:
                client = await _open(self.endpoint, self._get_tls_context(), self._local_hostname)
            except SmtpFailure as failure:
                raise failure.delivery_error() from failure.__cause__
            self._local_hostname = client.local_hostname
            return await self._transact(client, envelope_from, envelope_to, data, False)

    async def close(self) -> None:
        """Close the pooled connections; connections in use close when their send ends."""
        self._closed = True
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
        idle, self._idle = self._idle, []
        await asyncio.gather(*(_quit(client) for client in idle))

    async def _transact(
        self,
        client: _Client,
        envelope_from: str,
        recipients: list[str],
        data: bytes,
        reused: bool,
    ) -> DeliveryResult:
        client.data_started = False
        client.data_reply = None
        reusable = False
        try:
            try:
                refused, message = await client.send_envelope(
                    envelope_from, recipients, data, _mail_options(client, data)
                )
            except (aiosmtplib.SMTPException, OSError, ValueError) as exc:
                if reused and not client.data_started and is_dead_connection(exc):
                    raise _StaleConnection from exc
                failure = recipients_failure(exc) or classify_failure(
                    exc, self.endpoint, "DATA" if client.data_started else "MAIL"
                )
                # aiosmtplib sends RSET after a refused transaction; if that did not go through,
                # the session is in a state we cannot vouch for.
                reusable = not client.envelope_open
                raise failure.delivery_error() from exc
            reusable = True
            final = client.data_reply
            return DeliveryResult(
                reply=reply_text(final.code, final.message) if final else f"250 {message}",
                refused={rcpt: reply_text(*reply) for rcpt, reply in refused.items()},
            )
        finally:
            # Anything else (a cancellation, a bug) leaves the session in an unknown state.
            if reusable and not self._closed and client.is_connected:
                self._put_idle(client)
            else:
                client.close()

    def _get_tls_context(self) -> ssl.SSLContext | None:
        if self.endpoint.security == "none":
            return None
        if self._tls_context is None:
            self._tls_context = _build_tls_context(self.endpoint)
        return self._tls_context

    def _take_idle(self) -> _Client | None:
        self._close_expired()
        return self._idle.pop() if self._idle else None

    def _put_idle(self, client: _Client) -> None:
        client.idle_since = time.monotonic()
        self._idle.append(client)
        if self._reaper is None:
            self._reaper = asyncio.get_running_loop().call_later(self.idle_timeout, self._reap)

    def _reap(self) -> None:
        # Closes pooled connections nobody has needed for idle_timeout, even with no traffic.
        self._reaper = None
        self._close_expired()
        if self._idle:
            wait = self._idle[0].idle_since + self.idle_timeout - time.monotonic()
            self._reaper = asyncio.get_running_loop().call_later(max(wait, 0.0), self._reap)

    def _close_expired(self) -> None:
        now = time.monotonic()
        keep: list[_Client] = []
        for client in self._idle:
            if client.is_connected and now - client.idle_since < self.idle_timeout:
                keep.append(client)
            else:
                client.close()
        self._idle = keep


class _StaleConnection(Exception):
    """A pooled connection was dead before the server could have accepted anything."""


async def probe(endpoint: SmtpEndpoint) -> list[str]:
    """Connect, EHLO, STARTTLS and AUTH as configured, QUIT; return the transcript.

    Lines read ``"S: 250-mx.example"`` / ``"C: EHLO myhost"``; credentials never appear.
    Raises ``ProbeError`` with a one-line reason and the transcript up to the failure.
    """
    transcript: list[str] = []
    try:
        tls_context = None
        if endpoint.security != "none":
            tls_context = await asyncio.to_thread(_build_tls_context, endpoint)
        client = await _open(endpoint, tls_context, endpoint.local_hostname, transcript)
    except SmtpFailure as failure:
        raise ProbeError(failure.summary, transcript) from failure.__cause__
    await _quit(client)
    return transcript


async def _open(
    endpoint: SmtpEndpoint,
    tls_context: ssl.SSLContext | None,
    local_hostname: str | None,
    transcript: list[str] | None = None,
) -> _Client:
    """A connected client, past STARTTLS and AUTH as the endpoint asks; or ``SmtpFailure``."""
    client = _Client(
        endpoint, tls_context=tls_context, local_hostname=local_hostname, transcript=transcript
    )
    step = "connect"
    try:
        try:
            greeting = await client.connect()
        except aiosmtplib.SMTPConnectResponseError as exc:
            client.note_reply(exc.code, exc.message)
            raise
        client.note_reply(greeting.code, greeting.message)
        step = "EHLO"
        await client.ehlo()
        if endpoint.security == "starttls":
            if not client.supports_extension("starttls"):
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
    except (aiosmtplib.SMTPException, OSError, ValueError) as exc:
        client.close()
        raise classify_failure(exc, endpoint, step) from exc
    except BaseException:  # our own SmtpFailure, or a cancellation
        client.close()
        raise
    return client


async def _quit(client: _Client) -> None:
    try:
        await client.quit(timeout=QUIT_TIMEOUT)
    except (aiosmtplib.SMTPException, OSError):
        pass  # we are leaving either way
    finally:
        client.close()


def _build_tls_context(endpoint: SmtpEndpoint) -> ssl.SSLContext:
    # create_default_context: system roots, hostname checking, no legacy protocol versions.
    context = ssl.create_default_context()
    if endpoint.ca_file is not None:
        try:
            context.load_verify_locations(cafile=endpoint.ca_file)
        except (OSError, ValueError) as exc:
            raise config_failure(f"cannot load CA file {endpoint.ca_file}: {exc}") from exc
    return context


def _mail_options(client: _Client, data: bytes) -> list[str]:
    # RFC 6152: 8-bit content must be declared, and only to a server that offers 8BITMIME.
    if not data.isascii() and client.supports_extension("8bitmime"):
        return ["BODY=8BITMIME"]
    return []
