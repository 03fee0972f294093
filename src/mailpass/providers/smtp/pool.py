"""Delivery to one SMTP server over a small pool of reused connections.

A reused connection that turns out to be dead before DATA (the server timed it out while it
sat in the pool) is replaced once, transparently. Nothing is retried once DATA has started:
the server may already hold the message, and a second attempt could deliver it twice.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Sequence

import aiosmtplib

from mailpass.providers.smtp.client import SmtpClient, mail_options, open_client, quit_client
from mailpass.providers.smtp.endpoint import SmtpEndpoint, build_tls_context
from mailpass.providers.smtp.errors import SmtpFailure, StaleConnection
from mailpass.providers.smtp.failures import (
    classify_failure,
    is_dead_connection,
    recipients_failure,
    reply_text,
)
from mailpass.providers.transport import (
    DeliveryError,
    DeliveryResult,
    PermanentDeliveryError,
    ProviderHeld,
)

__all__ = ["DEFAULT_IDLE_TIMEOUT", "DEFAULT_MAX_CONNECTIONS", "SmtpTransport"]

DEFAULT_MAX_CONNECTIONS = 4  # open connections per transport
# seconds a pooled connection may sit unused; servers commonly drop idle clients after 60-300 s,
# so staying well below that keeps most reuses from meeting a connection the server has closed.
DEFAULT_IDLE_TIMEOUT = 30.0


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
        hold_after: int = 0,
        hold_for: float = 30.0,
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
        self._idle: list[SmtpClient] = []  # most recently used last
        self._reaper: asyncio.TimerHandle | None = None
        self._tls_context: ssl.SSLContext | None = None
        # Resolved once (aiosmtplib asks the resolver for our FQDN on every connect otherwise).
        self._local_hostname = endpoint.local_hostname
        self._closed = False
        # After ``hold_after`` sends in a row found the server unreachable (0: never), the
        # transport holds itself for ``hold_for`` seconds (``hold``): the circuit breaker
        # (``providers.circuit``) in this process, before the database hears of it.
        self.hold_after = hold_after
        self.hold_for = hold_for
        self._unreachable = 0
        self._held: tuple[str, float] | None = None  # (why, until when on the monotonic clock)

    def hold(self, reason: str, seconds: float) -> None:
        """Refuse sends that have not started talking to the server for ``seconds`` (see
        ``Transport.hold``): those waiting for a connection then give their place back at once
        instead of each waiting out a timeout of its own against a server that is not there."""
        self._held = (reason, time.monotonic() + seconds) if seconds > 0 else None

    def _check_held(self) -> None:
        if self._held is None:
            return
        reason, until = self._held
        if time.monotonic() >= until:
            self._held = None
            return
        raise ProviderHeld(reason, until)

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
        self._check_held()
        async with self._slots:
            self._check_held()
            try:
                result = await self._send(envelope_from, envelope_to, data)
            except DeliveryError as error:
                # Noted before the slot is given back, so that the sends waiting for it see
                # the hold the moment they get it.
                self._note_failure(error)
                raise
            self._unreachable = 0
            return result

    async def _send(
        self, envelope_from: str, envelope_to: list[str], data: bytes
    ) -> DeliveryResult:
        client = self._take_idle()
        if client is not None:
            try:
                return await self._transact(client, envelope_from, envelope_to, data, True)
            except StaleConnection:
                pass  # it died while pooled; the mail never reached the server
        try:
            client = await open_client(self.endpoint, self._get_tls_context(), self._local_hostname)
        except SmtpFailure as failure:
            raise failure.delivery_error() from failure.__cause__
        self._local_hostname = client.local_hostname
        return await self._transact(client, envelope_from, envelope_to, data, False)

    def _note_failure(self, error: DeliveryError) -> None:
        if not error.unreachable:
            self._unreachable = 0
            return
        self._unreachable += 1
        if self.hold_after and self._unreachable >= self.hold_after:
            self.hold(error.reply, self.hold_for)

    async def close(self) -> None:
        """Close the pooled connections; connections in use close when their send ends."""
        self._closed = True
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
        idle, self._idle = self._idle, []
        await asyncio.gather(*(quit_client(client) for client in idle))

    async def _transact(
        self,
        client: SmtpClient,
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
                    envelope_from, recipients, data, mail_options(client, data)
                )
            except (aiosmtplib.SMTPException, OSError, ValueError) as exc:
                if reused and not client.data_started and is_dead_connection(exc):
                    raise StaleConnection from exc
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
            self._tls_context = build_tls_context(self.endpoint)
        return self._tls_context

    def _take_idle(self) -> SmtpClient | None:
        self._close_expired()
        return self._idle.pop() if self._idle else None

    def _put_idle(self, client: SmtpClient) -> None:
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
        keep: list[SmtpClient] = []
        for client in self._idle:
            if client.is_connected and now - client.idle_since < self.idle_timeout:
                keep.append(client)
            else:
                client.close()
        self._idle = keep
