"""What the SMTP relay decides: who a session sends as, which envelope it may give, and how a
received mail becomes a queued message, recorded as a ``/send-batch`` item is and delivered by
the workers the same way. The SMTP conversation itself is ``relay.server``'s.

Every refusal is a ``Refusal`` carrying the SMTP reply to give (code, enhanced code, text).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from mailpass.accounts import repository as key_queries
from mailpass.accounts.key_rate import KeyRate
from mailpass.accounts.keys import ApiKey, hash_key, looks_like_key
from mailpass.accounts.throttle import AuthThrottle
from mailpass.accounts.usage import KeyUsage
from mailpass.clock import utcnow
from mailpass.config import Settings
from mailpass.core.addresses import AddressError, parse_mailbox
from mailpass.core.client_ip import IPNetwork, in_networks, parse_trusted_senders
from mailpass.core.ids import new_message_id
from mailpass.core.outgoing import Address, format_addresses
from mailpass.core.statuses import MessageStatus
from mailpass.messages import repository
from mailpass.messages.request import MAX_RECIPIENTS
from mailpass.messages.results import SendingAccount
from mailpass.messages.service import MailService
from mailpass.relay.message import BadMessage, ReceivedMail, read_mail, replace_html
from mailpass.storage.unavailable import database_unavailable, duplicate_key
from mailpass.suppressions.service import SuppressionService

__all__ = ["Accepted", "Refusal", "RelayService", "Sender"]

log = logging.getLogger("mailpass.relay")
capture_log = logging.getLogger("mailpass.capture")

SOURCE = "smtp"  # messages.source of what the relay takes
# Seconds a sender's key and account, once read, serve the next messages: a revoked key, a new
# default provider or a first suppressed address counts within this long.
SENDER_FRESHNESS = 1.0
MAX_KEPT_SENDERS = 10_000
MAX_LIST_CHARS = 1000  # the messages table's to_email and reply_to
MAX_NAME_CHARS = 255


class Refusal(Exception):
    """The SMTP reply to give instead of going on (``str()`` is the whole reply line)."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


@dataclass(frozen=True, slots=True)
class Sender:
    """Whom a session sends as: an API key, by its hash (checked again for every message, so
    that a revoked key or a new default provider counts within ``SENDER_FRESHNESS``)."""

    key_hash: str
    key_id: int


@dataclass(frozen=True, slots=True)
class Accepted:
    message_id: str
    ignored: tuple[str, ...]  # X-MailPass-* fields the relay does not know (left in the mail)


UNAVAILABLE = "451 4.3.0 the message could not be recorded; try again later"
# The database could not answer, at each step before DATA.
SENDER_UNAVAILABLE = "451 4.3.0 the sender could not be checked; try again later"
RECIPIENT_UNAVAILABLE = "451 4.3.0 the recipient could not be checked; try again later"
# At connection, where only 421 may refuse the session (RFC 5321 3.1).
NETWORK_UNAVAILABLE = "421 4.3.0 this network's key could not be read; try again later"


class RelayService:
    def __init__(
        self,
        settings: Settings,
        mail: MailService,
        auth_throttle: AuthThrottle,
        key_rate: KeyRate,
        key_usage: KeyUsage,
        suppressions: SuppressionService,
    ) -> None:
        self.settings = settings
        self.suppressions = suppressions
        self.mail = mail
        self.database = mail.database
        self.auth_throttle = auth_throttle
        self.key_rate = key_rate
        self.key_usage = key_usage
        self.trusted: tuple[tuple[IPNetwork, int], ...] = parse_trusted_senders(
            settings.smtp_trusted_networks
        )
        self._trusted_hashes: dict[int, str] = {}
        # key hash -> (monotonic time it is read again, key, account): a session sending many
        # messages reads its key at most once a second, not at every MAIL FROM.
        self._senders: dict[str, tuple[float, ApiKey | None, SendingAccount]] = {}

    # -- who sends ----------------------------------------------------------------------------

    def throttled(self, address: str, code: str = "421 4.7.0") -> str | None:
        """The reply (``code`` and why) for a client address that failed authentication too
        often, or None."""
        retry_after = self.auth_throttle.retry_after(address)
        if retry_after is None:
            return None
        return (
            f"{code} too many failed authentications from this address; "
            f"try again in {retry_after} seconds"
        )

    async def authenticate(self, password: str, address: str) -> Sender:
        """The sender whose API key ``password`` is (the user name is not checked: any will
        do); a wrong one counts against ``address`` as a failed API request does."""
        blocked = self.throttled(address, "454 4.7.0")
        if blocked is not None:
            raise Refusal(blocked)
        key_hash = hash_key(password) if looks_like_key(password) else None
        try:
            key = None
            if key_hash is not None:
                key, _account = await self.mail.find_sender(key_hash)
            if key is None or key.revoked_at is not None:
                await self.auth_throttle.failed(address)
                revoked = key is not None
                raise Refusal(
                    "535 5.7.8 "
                    + ("this API key has been revoked" if revoked else "invalid API key")
                )
        except Refusal:
            raise
        except Exception as exc:
            raise _unavailable(
                exc, "454 4.7.0 cannot check credentials now; try again later"
            ) from None
        if "mail" not in key.permissions:
            raise Refusal("535 5.7.8 this API key lacks the `mail` permission")
        assert key_hash is not None
        return Sender(key_hash, key.id)

    async def trusted_sender(self, address: str) -> Sender | None:
        """The sender a client at ``address`` is without AUTH (its trusted network's key), or
        None when it is in none of ``MAILPASS_SMTP_TRUSTED_NETWORKS``. Asked at connection:
        a refusal is a 421."""
        for network, key_id in self.trusted:
            if in_networks(address, (network,)):
                key_hash = self._trusted_hashes.get(key_id)
                if key_hash is None:
                    try:
                        key_hash = await key_queries.key_hash_by_id(self.database, key_id)
                    except Exception as exc:
                        raise _unavailable(exc, NETWORK_UNAVAILABLE) from None
                    if key_hash is None:
                        log.error(
                            "MAILPASS_SMTP_TRUSTED_NETWORKS names key %d: no such key", key_id
                        )
                        raise Refusal("421 4.7.0 this network's API key does not exist")
                    self._trusted_hashes[key_id] = key_hash
                return Sender(key_hash, key_id)
        return None

    async def start_message(
        self, sender: Sender, envelope_from: str
    ) -> tuple[ApiKey, SendingAccount]:
        """At MAIL FROM: the sender's key, admitted for one more message, and its account;
        the envelope sender checked as the API checks ``from_email``."""
        if not envelope_from:
            raise Refusal("553 5.1.7 a null sender (MAIL FROM:<>) is not taken: give the sender")
        try:
            parse_mailbox(envelope_from)
        except AddressError as exc:
            raise Refusal(f"553 5.1.7 {exc}") from None
        try:
            key, account = await self._sender(sender.key_hash)
        except Exception as exc:
            raise _unavailable(exc, SENDER_UNAVAILABLE) from None
        if key is None or key.revoked_at is not None:
            raise Refusal("530 5.7.0 this API key has been revoked: authenticate again")
        if "mail" not in key.permissions:
            raise Refusal("530 5.7.0 this API key lacks the `mail` permission")
        if account.provider is None and not key.is_test:
            raise Refusal(
                "554 5.3.5 no default SMTP provider: add one with `mailpass providers add "
                "--default`"
            )
        retry_after = self.key_rate.take(key.id)
        if retry_after is not None:
            raise Refusal(
                f"454 4.7.0 this API key's limit of {self.key_rate.per_second:g} messages a "
                f"second is reached; try again in {retry_after} seconds"
            )
        await self.key_usage.record(key.id)
        return key, account

    async def _sender(self, key_hash: str) -> tuple[ApiKey | None, SendingAccount]:
        now = time.monotonic()
        kept = self._senders.get(key_hash)
        if kept is not None and kept[0] > now:
            return kept[1], kept[2]
        key, account = await self.mail.find_sender(key_hash)
        if len(self._senders) >= MAX_KEPT_SENDERS:
            self._senders.clear()
        self._senders[key_hash] = (now + SENDER_FRESHNESS, key, account)
        return key, account

    async def check_recipient(
        self, key: ApiKey, account: SendingAccount, address: str, taken: int
    ) -> str:
        """``address`` as it is recorded (``taken``: recipients already given); refused when
        it is not an address, one too many, or on the account's suppression list."""
        if taken >= MAX_RECIPIENTS:
            raise Refusal(f"452 4.5.3 a message takes at most {MAX_RECIPIENTS} recipients")
        try:
            mailbox = parse_mailbox(address)
        except AddressError as exc:
            raise Refusal(f"553 5.1.3 {exc}") from None
        if account.suppresses:
            try:
                listed = await self.suppressions.among(key.user_id, [mailbox.email.lower()])
            except Exception as exc:
                raise _unavailable(exc, RECIPIENT_UNAVAILABLE) from None
            if listed:
                (reason,) = listed.values()
                raise Refusal(
                    f"550 5.7.1 {mailbox.email} is on this account's suppression list "
                    f"({reason.value})"
                )
        return mailbox.email

    # -- what is sent -------------------------------------------------------------------------

    async def accept(
        self,
        key: ApiKey,
        account: SendingAccount,
        recipients: list[str],
        data: bytes,
        received: str,
    ) -> Accepted:
        """Record ``data`` for ``recipients`` (queued for the account's provider, or captured
        for a test key), durably, before the client hears 250. ``received``: the trace field
        (``Received: ...``, without its line ending) the relay adds at the top."""
        try:
            mail = read_mail(data)
        except BadMessage as exc:
            raise Refusal(exc.reply) from None
        provider = account.provider
        now = utcnow()
        prefix = received.encode("utf-8", "replace") + mail.newline
        if not mail.has_date:
            date = format_datetime(now.replace(tzinfo=UTC))
            prefix += f"Date: {date}".encode() + mail.newline
        body: bytes | None = None
        tracking_id: str | None = None
        links: tuple[str, ...] = ()
        if mail.html is not None and mail.html_part is not None and self.mail.tracker:
            tracked = self.mail.tracker.rewrite(
                mail.html,
                provider,
                track_opens=mail.control.track_opens,
                track_clicks=mail.control.track_clicks,
            )
            if tracked is not None:
                body = replace_html(mail, tracked[1].html)
                if body is not None:
                    tracking_id, links = tracked[0], tuple(tracked[1].links)
                else:
                    log.info("a relayed html part could not be rewritten for tracking")
        domain = self.settings.message_id_domain or mail.sender.email.rpartition("@")[2]
        message_id = mail.message_id or new_message_id(domain)
        while True:
            head = prefix
            if message_id != mail.message_id:
                head += f"Message-ID: {message_id}".encode() + mail.newline
            raw = mail.mail(head, body)
            row = _row(key, provider, mail, recipients, message_id, now)
            row.update(tracking_id=tracking_id, tracked_links=list(links) if tracking_id else None)
            try:
                if key.is_test:
                    await self._capture(row, raw, mail.sender.email, recipients, now)
                else:
                    await repository.store_message(self.database, row, raw)
            except Exception as exc:
                if message_id != mail.message_id or not duplicate_key(exc):
                    raise _unavailable(exc, UNAVAILABLE) from None
                # The client's Message-ID is another message's: the mail gets one of ours.
                log.info("Message-ID %s is taken: assigning a new one", message_id)
                mail.drop_message_id()
                message_id = new_message_id(domain)
                continue
            break
        if not key.is_test:
            await self.mail.wakeup.announce()
        return Accepted(message_id, mail.control.ignored)

    async def _capture(
        self,
        row: dict[str, Any],
        raw: bytes,
        envelope_from: str,
        recipients: list[str],
        now: datetime,
    ) -> None:
        """A test key's mail: recorded as sent and kept in the capture inbox, never delivered."""
        row.update(
            status=MessageStatus.SENT,
            accepted_as=MessageStatus.SENT,
            sent_at=now,
            attempts=1,
            next_attempt_at=None,
        )
        await repository.store_captured(
            self.database, row, raw, envelope_from=envelope_from, recipients=recipients, now=now
        )
        capture_log.info(
            "captured %s to=%s subject=%r (SMTP)",
            row["message_id"],
            ", ".join(recipients),
            row["subject"],
        )


def _unavailable(exc: BaseException, reply: str) -> Refusal:
    """The 4xx reply for a database that cannot answer now; a bug is logged with its
    traceback and answered the same (the client tries again; nothing was stored)."""
    reason = database_unavailable(exc)
    if reason is None:
        log.error("the relay could not go on", exc_info=exc)
    else:
        log.warning("the database is unavailable (%s): %s", reason, reply)
    return Refusal(reply)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _clean(text: str | None) -> str | None:
    """Text for a column (PostgreSQL's text cannot hold NUL)."""
    return text.replace("\x00", "\ufffd") if text is not None else None


def _row(
    key: ApiKey,
    provider: Any,
    mail: ReceivedMail,
    recipients: list[str],
    message_id: str,
    now: datetime,
) -> dict[str, Any]:
    """The ``messages`` row of a relayed mail (its bytes are kept whole beside it): the
    columns a ``/send-batch`` item fills, from the mail's header and the envelope."""
    shown = mail.header_recipients()
    sender: Address = mail.sender
    return {
        "envelope_to": recipients,
        "user_id": key.user_id,
        "provider_id": provider.id if provider is not None and not key.is_test else None,
        "message_id": message_id,
        "from_email": sender.email,
        "from_name": _clip(sender.name, MAX_NAME_CHARS) if sender.name else None,
        "to_email": _clip(format_addresses(mail.to) or ", ".join(recipients), MAX_LIST_CHARS),
        "cc": [a.email for a in mail.cc],
        "bcc": [r for r in recipients if r.lower() not in shown],
        "reply_to": _clip(format_addresses(mail.reply_to), MAX_LIST_CHARS) or None,
        "subject": _clean(mail.subject) or "",
        "html": _clean(mail.html),
        "text": _clean(mail.text),
        "tags": list(mail.control.tags),
        "user_metadata": mail.control.metadata,
        "status": MessageStatus.QUEUED,
        "accepted_as": MessageStatus.QUEUED,
        "is_test": key.is_test,
        "created_at": now,
        "next_attempt_at": now,
        "attachments": mail.attachments,
        "source": SOURCE,
    }
