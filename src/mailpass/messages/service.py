"""Sending one message now (``/send``) and reading a message's status (``/status``)."""

from __future__ import annotations

import asyncio
import logging
import math
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

from mailpass.accounts.keys import ApiKey
from mailpass.clock import isoformat, utcnow
from mailpass.config import Settings
from mailpass.core.ids import new_message_id, normalize_message_id
from mailpass.core.mime import compose
from mailpass.core.outgoing import Address, Attachment, OutgoingMessage, format_addresses
from mailpass.core.statuses import MessageStatus
from mailpass.core.stored import kept_as_columns
from mailpass.delivery.wakeup import QueueWakeup
from mailpass.errors import (
    NoSmtpProvider,
    NotCancellable,
    RecipientSuppressed,
    SendFailed,
    SendLimitExceeded,
    ValidationError,
)
from mailpass.intake.verp import ReturnPaths
from mailpass.messages import repository
from mailpass.messages.late_outcomes import LateOutcomes
from mailpass.messages.request import (
    BatchFields,
    MessageFields,
    ValidMessage,
    validate_batch_item,
    validate_message,
)
from mailpass.messages.results import (
    BatchItem,
    MessageEvent,
    MessageRecord,
    QueuedBatch,
    QueuedMessage,
    RefusedItem,
    ScheduledMessage,
    SendingAccount,
    SentMessage,
    StatusLookup,
    timeline,
)
from mailpass.messages.suppressed import recipients_of, without_suppressed
from mailpass.providers import repository as provider_queries
from mailpass.providers.circuit import (
    CircuitPolicy,
    ProviderAttempts,
    describe_down,
    note_attempts,
)
from mailpass.providers.limits import LimitReached, check_slot_free
from mailpass.providers.models import Provider
from mailpass.providers.registry import TransportRegistry
from mailpass.providers.service import fallbacks_of
from mailpass.providers.transport import DeliveryError, DeliveryResult
from mailpass.runtime.logs import MESSAGE_ID
from mailpass.storage.database import Connection, Database
from mailpass.suppressions import repository as suppression_queries
from mailpass.suppressions.models import SuppressionReason
from mailpass.tracking.sending import MessageTracker

__all__ = ["MailService", "message_row"]

log = logging.getLogger("mailpass.messages")
capture_log = logging.getLogger("mailpass.capture")

ITEMS_BETWEEN_YIELDS = 10  # batch items validated and composed before the loop gets a turn


def message_row(
    *,
    key: ApiKey,
    provider: Provider | None,
    outgoing: OutgoingMessage,
    valid: ValidMessage,
    status: MessageStatus,
    now: datetime,
) -> dict[str, Any]:
    """The ``messages`` row for a message that is about to be sent or queued. Its composed
    mail is stored beside it when it is kept whole (``repository.store_message``)."""
    return {
        "envelope_to": outgoing.envelope_recipients,
        "user_id": key.user_id,
        "provider_id": provider.id if provider else None,
        "message_id": outgoing.message_id,
        "from_email": outgoing.sender.email,
        "from_name": outgoing.sender.name,
        "to_email": format_addresses(outgoing.to),
        "cc": [a.email for a in outgoing.cc],
        "bcc": [a.email for a in outgoing.bcc],
        "reply_to": format_addresses(outgoing.reply_to) or None,
        "subject": outgoing.subject,
        # The html as the client sent it: the tracked copy is in the composed mail, and
        # showing this one (in the dashboard) must not fire the pixel.
        "html": valid.html,
        "tracking_id": outgoing.tracking_id,
        "tracked_links": list(outgoing.tracked_links) if outgoing.tracking_id else None,
        "text": outgoing.text,
        "tags": list(valid.tags),
        "user_metadata": valid.metadata,
        "status": status,
        "accepted_as": status,
        "is_test": key.is_test,
        "created_at": now,
        "slot_at": now if provider is not None and status == MessageStatus.SENDING else None,
        "next_attempt_at": (valid.scheduled_at or now) if status == MessageStatus.QUEUED else None,
        "scheduled_at": valid.scheduled_at,
        "attachments": attachment_list(outgoing.attachments),
    }


def attachment_list(attachments: tuple[Attachment, ...]) -> list[dict[str, Any]] | None:
    """What the ``attachments`` column keeps of a message's files (their bytes are in its
    composed mail), in the order given; None when it has none."""
    if not attachments:
        return None
    return [
        {
            "filename": attachment.filename,
            "content_type": attachment.content_type,
            "size": len(attachment.content),
            "content_id": attachment.content_id,
        }
        for attachment in attachments
    ]


class MailService:
    def __init__(
        self,
        settings: Settings,
        database: Database,
        transports: TransportRegistry,
        wakeup: QueueWakeup,
        tracker: MessageTracker | None = None,
        return_paths: ReturnPaths | None = None,
    ) -> None:
        self.settings = settings
        self.return_paths = return_paths
        self.database = database
        self.transports = transports
        self.wakeup = wakeup
        self.tracker = tracker
        self.late_outcomes = LateOutcomes()
        self.circuit = CircuitPolicy.from_settings(settings)

    def build_outgoing(
        self, valid: ValidMessage, provider: Provider | None, date: datetime | None = None
    ) -> OutgoingMessage:
        """Fill in the provider's default sender, a fresh Message-ID and the Date (``date``,
        timezone-aware, or now); rewrite the html for open and click tracking when the request
        or the provider turns it on."""
        sender = valid.sender
        if sender is None:
            if provider is None or not provider.from_email:
                raise ValidationError(
                    "from_email is required: the provider has no default sender",
                    details=[{"field": "from_email", "message": "is required"}],
                )
            sender = Address(provider.from_email, valid.from_name or provider.from_name)
        domain = self.settings.message_id_domain or sender.email.rpartition("@")[2]
        outgoing = OutgoingMessage(
            message_id=new_message_id(domain),
            sender=sender,
            to=valid.to,
            subject=valid.subject,
            date=date or utcnow().replace(tzinfo=UTC),
            html=valid.html,
            text=valid.text,
            cc=valid.cc,
            bcc=valid.bcc,
            reply_to=valid.reply_to,
            extra_headers=valid.headers,
            attachments=valid.attachments,
        )
        if self.tracker is None:
            return outgoing
        return self.tracker.apply(
            outgoing, provider, track_opens=valid.track_opens, track_clicks=valid.track_clicks
        )

    async def send_now(
        self, key: ApiKey, account: SendingAccount, fields: MessageFields
    ) -> SentMessage | ScheduledMessage:
        """Deliver one message synchronously through ``provider``, the account's default.

        The message is recorded (status ``sending``, holding a slot of the provider's limits)
        before the provider is contacted and updated after, so that a crash in between leaves a
        visible record instead of a mail nobody knows was sent.
        """
        now = utcnow()
        provider = account.provider
        valid = validate_message(
            fields, max_attachment_bytes=self.settings.max_attachment_bytes, now=now
        )
        if provider is None and not key.is_test:
            raise NoSmtpProvider(
                "no default SMTP provider: add one with `mailpass providers add --default`"
            )
        listed = await self._suppressed_among(key, account, [valid])
        valid, dropped = without_suppressed(valid, listed)
        if valid.scheduled_at is not None:
            return await self._schedule(key, provider, valid, now, dropped)
        date = now.replace(tzinfo=UTC)
        outgoing = self.build_outgoing(valid, provider, date)
        MESSAGE_ID.set(outgoing.message_id)  # the request's log lines name it (runtime.logs)
        data = compose(outgoing)
        recipients = outgoing.envelope_recipients
        if key.is_test:
            return await self._capture(key, valid, outgoing, data, recipients, dropped)
        assert provider is not None
        # As a batch's: the bytes are kept only when the columns cannot give them back.
        raw = None if kept_as_columns(outgoing, date) else data
        chain = [provider]
        if provider.fallbacks:  # failover (``delivery.failover``): the same, synchronously
            chain += await fallbacks_of(self.database, provider)
        passed: list[str] = []  # why each provider before the one that took it did not
        message_pk: int | None = None
        for position, carrier in enumerate(chain):
            alone = len(chain) == 1
            last = position == len(chain) - 1
            if carrier.is_down(now):
                if alone:
                    raise provider_down(provider, now)
                passed.append(describe_down(carrier.name, carrier.down_until, carrier.down_reason))
                continue
            row = message_row(
                key=key,
                provider=carrier,
                outgoing=outgoing,
                valid=valid,
                status=MessageStatus.SENDING,
                now=now,
            )
            taken = await self._record_under(carrier, message_pk, row, raw, now)
            if isinstance(taken, LimitReached):
                if alone:
                    raise SendLimitExceeded(taken.describe(), retry_after=taken.retry_after)
                passed.append(f"{carrier.name}: {taken.describe()}")
                continue
            message_pk = taken
            try:
                result = await self._send_through(carrier, message_pk, outgoing, recipients, data)
            except DeliveryError as exc:
                if exc.unreachable:
                    await self._note_attempt(carrier, failure=exc.reply)
                if exc.transient and not last:
                    passed.append(f"{carrier.name}: {exc.reply}")
                    continue
                await self._refused(message_pk, exc, passed)
            note = None
            if carrier is not provider:
                note = f"sent through {carrier.name}, fallback of " + "; ".join(passed)
            await self._record_sent(key, account, message_pk, outgoing, recipients, result, note)
            if not carrier.is_healthy:
                await self._note_attempt(carrier, failure=None)
            return SentMessage(
                outgoing.message_id,
                format_addresses(outgoing.to),
                outgoing.sender.email,
                valid.ignored,
                dropped,
            )
        # Every one of them down or at its limit.
        reason = "no provider could take the message: " + "; ".join(passed)
        if message_pk is not None:
            pk = message_pk
            await self.late_outcomes.record(
                lambda: repository.mark_failed(self.database, pk, reason)
            )
        raise SendFailed(reason, details=[{"message": item} for item in passed])

    async def _record_under(
        self,
        carrier: Provider,
        message_pk: int | None,
        row: dict[str, Any],
        raw: bytes | None,
        now: datetime,
    ) -> int | LimitReached:
        """Record the message (status ``sending``) under ``carrier``, or move its record there
        (a fallback), taking a slot of its limits; its primary key, or the limit that stops it."""
        lock = not self.database.is_sqlite

        async def record(connection: Connection) -> int | LimitReached:
            # The slot is checked and taken in one transaction (the provider's row locked on
            # PostgreSQL), so two requests never both take the last one.
            if carrier.has_limits:
                over = await check_slot_free(connection, carrier, now, lock=lock)
                if over is not None:
                    return over
            if message_pk is not None:
                await repository.move_to_provider(connection, message_pk, carrier.id, now)
                return message_pk
            return await repository.insert_message(connection, row, raw)

        if message_pk is None and not carrier.has_limits:
            return await repository.store_message(self.database, row, raw)
        return await self.database.write(record)

    async def _send_through(
        self,
        carrier: Provider,
        message_pk: int,
        outgoing: OutgoingMessage,
        recipients: list[str],
        data: bytes,
    ) -> DeliveryResult:
        try:
            envelope_from = outgoing.sender.email
            if self.return_paths is not None:
                envelope_from = self.return_paths.envelope_sender(
                    carrier.kind, message_pk, envelope_from
                )
            return await self.transports.get(carrier).send(envelope_from, recipients, data)
        except DeliveryError:
            raise
        except BaseException:
            # A bug or a cancellation: the mail may or may not have left. Say so on the record
            # rather than leaving it "sending" forever.
            await repository.mark_failed(
                self.database, message_pk, "interrupted before the provider answered"
            )
            raise

    async def _refused(self, message_pk: int, exc: DeliveryError, passed: list[str]) -> NoReturn:
        reply = exc.reply if not passed else "; ".join([*passed, exc.reply])
        await self.late_outcomes.record(
            lambda: repository.mark_failed(self.database, message_pk, reply)
        )
        details: dict[str, Any] = {"smtp_reply": exc.reply}
        if exc.smtp_code is not None:
            details["smtp_code"] = exc.smtp_code
        raise SendFailed(
            f"the provider did not accept the message: {reply}", details=[details]
        ) from None

    async def _record_sent(
        self,
        key: ApiKey,
        account: SendingAccount,
        message_pk: int,
        outgoing: OutgoingMessage,
        recipients: list[str],
        result: DeliveryResult,
        note: str | None,
    ) -> None:
        if result.deferred:
            await self._defer_the_rest(message_pk, recipients, result)
            return
        sent_at = utcnow()
        said = "; ".join(part for part in (note, result.refusal_note()) if part) or None
        # The provider took it: that is the answer, even if the database cannot note it now.
        webhook = (key.user_id, outgoing.message_id) if account.webhooks else None
        await self.late_outcomes.record(
            lambda: repository.mark_sent(
                self.database, message_pk, sent_at, said, result.reply, webhook=webhook
            )
        )

    async def _defer_the_rest(
        self, message_pk: int, recipients: list[str], result: DeliveryResult
    ) -> None:
        """Accepted for some recipients, deferred for others: the queue retries the others
        after the first back-off, as it retries any deferred message."""
        delivered = [r for r in recipients if r not in result.deferred and r not in result.refused]
        retry_at = utcnow() + timedelta(seconds=self.settings.retry_base_delay)
        note = result.refusal_note() or ""
        await self.late_outcomes.record(
            lambda: repository.mark_partly_sent(
                self.database,
                message_pk,
                delivered=delivered,
                note=note,
                reply=result.reply,
                retry_at=retry_at,
            )
        )

    async def _suppressed_among(
        self, key: ApiKey, account: SendingAccount, valids: list[ValidMessage]
    ) -> dict[str, SuppressionReason]:
        """Those of the messages' recipients on the account's suppression list: looked up (and
        the recipients gathered) only when it has any, as the key's own query said."""
        if not account.suppresses:
            return {}
        emails = set().union(*(recipients_of(valid) for valid in valids))
        async with self.database.read() as connection:
            return await suppression_queries.suppressed_among(connection, key.user_id, emails)

    async def _schedule(
        self,
        key: ApiKey,
        provider: Provider | None,
        valid: ValidMessage,
        now: datetime,
        dropped: tuple[str, ...],
    ) -> ScheduledMessage:
        """A ``/send`` with ``scheduled_at``: queued until then, as a batch item is. Its Date
        is the time it is to be sent; it takes a slot of its provider's limits only then."""
        assert valid.scheduled_at is not None
        outgoing = self.build_outgoing(valid, provider, valid.scheduled_at.replace(tzinfo=UTC))
        row = message_row(
            key=key,
            provider=None if key.is_test else provider,
            outgoing=outgoing,
            valid=valid,
            status=MessageStatus.QUEUED,
            now=now,
        )
        # Its Date is not its created_at: kept whole.
        queue_id = await repository.store_message(self.database, row, compose(outgoing))
        if valid.scheduled_at <= now:
            await self.wakeup.announce()
        return ScheduledMessage(
            message_id=outgoing.message_id,
            queue_id=queue_id,
            to=row["to_email"],
            sender=outgoing.sender.email,
            scheduled_at=valid.scheduled_at,
            ignored=valid.ignored,
            suppressed=dropped,
        )

    async def cancel(self, message: MessageRecord) -> MessageStatus:
        """Take ``message`` (its account's, as the caller checked) out of the queue; raises
        `NotCancellable` if it is no longer waiting there. Cancelling it again is no error."""
        if message.status == MessageStatus.CANCELLED:
            return MessageStatus.CANCELLED
        if await repository.cancel_queued(self.database, message.queue_id):
            return MessageStatus.CANCELLED
        # A worker claimed it (or it was sent, or failed) between the lookup and now.
        current = await repository.current_status(self.database, message.queue_id)
        if current == MessageStatus.CANCELLED:
            return MessageStatus.CANCELLED
        raise NotCancellable(
            f"the message is {current or message.status}: only a queued message can be cancelled",
            details=[{"message_id": message.message_id, "status": current or message.status}],
        )

    async def _note_attempt(self, provider: Provider, *, failure: str | None) -> None:
        """Move the provider's circuit breaker on after a /send reached it (``failure`` None)
        or found it unreachable; when that marks it down, this process's sends waiting for
        one of its connections give up at once. Never an error for the request."""
        attempt = ProviderAttempts(worked=failure is None)
        if failure is not None:
            attempt.failed(failure, probe=provider.down_until is not None)
        lock = not self.database.is_sqlite
        try:
            async with self.database.transaction() as connection:
                marked = await note_attempts(
                    connection, self.circuit, {provider.id: attempt}, utcnow(), lock=lock
                )
        except Exception as exc:  # the answer stands; the next attempt notes it again
            log.warning("cannot note provider %s's state (%s)", provider.id, exc)
            return
        if provider.id in marked:
            pause = (marked[provider.id] - utcnow()).total_seconds()
            self.transports.get(provider).hold(failure or "", pause)

    async def queue_batch(
        self, key: ApiKey, account: SendingAccount, batch: BatchFields
    ) -> QueuedBatch:
        """Queue up to 100 messages in one transaction, for ``provider`` (the account's default);
        a bad item fails alone.

        Each item is validated now, and its Message-ID and Date fixed. Most are stored as
        their columns, and the worker composes them when it sends them, into the bytes they
        would have had now (``mailpass.core.stored``); the others are composed now and
        stored whole. Either way every attempt of a message is the same mail.
        """
        batch.check_size()
        provider = account.provider
        if provider is None and not key.is_test:
            raise NoSmtpProvider(
                "no default SMTP provider: add one with `mailpass providers add --default`"
            )
        queue_provider = None if key.is_test else provider
        now = utcnow()
        date = now.replace(tzinfo=UTC)  # every message of the batch is accepted at once
        defaults = batch.item_defaults()
        # First every item checked, then the account's suppression list read once for all
        # their recipients, then the messages made.
        checked: list[ValidMessage | RefusedItem] = []
        for index, item in enumerate(batch.messages):
            if index and index % ITEMS_BETWEEN_YIELDS == 0:
                # A batch is ~10 ms of CPU. Letting the loop in now and then keeps other
                # requests, and a database write this process is due to make, from waiting
                # for all of it.
                await asyncio.sleep(0)
            try:
                checked.append(
                    validate_batch_item(
                        item, defaults, index, self.settings.max_attachment_bytes, now
                    )
                )
            except ValidationError as exc:
                checked.append(_refused(item, exc))
        listed = await self._suppressed_among(
            key, account, [valid for valid in checked if isinstance(valid, ValidMessage)]
        )
        refused: list[RefusedItem | None] = []  # None where the item is queued
        rows: list[dict[str, Any]] = []
        raws: list[bytes | None] = []  # the composed mail of each row kept whole, else None
        dropped_of: list[tuple[str, ...]] = []  # each row's suppressed cc and bcc
        ignored = list(batch.ignored)
        for index, (item, valid) in enumerate(zip(batch.messages, checked, strict=True)):
            if isinstance(valid, RefusedItem):
                refused.append(valid)
                continue
            if index and index % ITEMS_BETWEEN_YIELDS == 0:
                await asyncio.sleep(0)
            try:
                valid, dropped = without_suppressed(valid, listed)
                # A scheduled message's Date is when it is to be sent.
                scheduled = valid.scheduled_at
                outgoing = self.build_outgoing(
                    valid, provider, scheduled.replace(tzinfo=UTC) if scheduled else date
                )
            except (ValidationError, RecipientSuppressed) as exc:
                refused.append(_refused(item, exc))
                continue
            rows.append(
                message_row(
                    key=key,
                    provider=queue_provider,
                    outgoing=outgoing,
                    valid=valid,
                    status=MessageStatus.QUEUED,
                    now=now,
                )
            )
            raws.append(None if kept_as_columns(outgoing, date) else compose(outgoing))
            dropped_of.append(dropped)
            refused.append(None)
            ignored.extend(f"messages.{index}.{name}" for name in valid.ignored)
        queue_ids: list[int] = []
        if rows:
            queue_ids = await repository.store_messages(self.database, rows, raws)
            await self.wakeup.announce()
        queued = iter(zip(rows, queue_ids, dropped_of, strict=True))
        items: list[BatchItem] = []
        for refusal in refused:
            if refusal is not None:
                items.append(refusal)
                continue
            row, queue_id, dropped = next(queued)
            items.append(QueuedMessage(row["to_email"], queue_id, row["message_id"], dropped))
        return QueuedBatch(items, queued=len(rows), ignored=tuple(ignored))

    async def _capture(
        self,
        key: ApiKey,
        valid: ValidMessage,
        outgoing: OutgoingMessage,
        data: bytes,
        recipients: list[str],
        dropped: tuple[str, ...],
    ) -> SentMessage:
        """A test key's message: recorded as sent, kept in the capture inbox, never delivered."""
        now = utcnow()
        row = message_row(
            key=key,
            provider=None,
            outgoing=outgoing,
            valid=valid,
            status=MessageStatus.SENT,
            now=now,
        )
        row.update(sent_at=now, attempts=1)
        await repository.store_captured(
            self.database,
            row,
            data,
            envelope_from=outgoing.sender.email,
            recipients=recipients,
            now=now,
        )
        capture_log.info(
            "captured %s to=%s subject=%r",
            outgoing.message_id,
            ", ".join(recipients),
            outgoing.subject,
        )
        return SentMessage(
            outgoing.message_id,
            format_addresses(outgoing.to),
            outgoing.sender.email,
            valid.ignored,
            dropped,
        )

    async def find_sender(self, key_hash: str) -> tuple[ApiKey | None, SendingAccount]:
        """The key with ``key_hash`` (None when there is none) and what /send needs of its
        account, read in one query. The caller admits the key."""
        key, provider, suppresses, webhooks = await provider_queries.find_key_and_default_provider(
            self.database, key_hash
        )
        return key, SendingAccount(provider, suppresses, webhooks)

    async def find_status(self, key_hash: str, raw_message_id: str) -> StatusLookup:
        """The key with ``key_hash`` and its account's message with this Message-ID (given
        with or without its angle brackets), read in one query. Nothing is checked here: the
        caller admits the key before it tells anything about the message."""
        message_id = normalize_message_id(raw_message_id)
        key, found = await repository.find_key_and_message_status(
            self.database, key_hash, message_id
        )
        if found is None:
            return StatusLookup(key, message_id, None, [])
        message, events = found
        record = MessageRecord.of(message)
        return StatusLookup(
            key, message_id, record, timeline(record, [MessageEvent.of(e) for e in events])
        )


def _refused(item: Any, problem: ValidationError | RecipientSuppressed) -> RefusedItem:
    """A batch item that fails alone, with what was wrong."""
    to = item.to if isinstance(item, MessageFields) else None
    if isinstance(item, dict):
        to = item.get("to")
    return RefusedItem(
        to=to if isinstance(to, str) else None,
        error=describe_problems(problem) if isinstance(problem, ValidationError) else str(problem),
        details=problem.details or [],
        code=problem.code,
    )


def provider_down(provider: Provider, now: datetime) -> SendFailed:
    """/send's answer while its provider is down (``providers.circuit``): at once, nothing
    stored, with when it will be tried again."""
    assert provider.down_until is not None
    wait = max(1, math.ceil((provider.down_until - now).total_seconds()))
    return SendFailed(
        describe_down(provider.name, provider.down_until, provider.down_reason),
        details=[
            {
                "provider": provider.name,
                "provider_state": "down",
                "down_until": isoformat(provider.down_until),
                "reason": provider.down_reason,
            }
        ],
        headers={"Retry-After": str(wait)},
    )


def describe_problems(error: ValidationError) -> str:
    """A failed batch item's ``error``: the problems in one line."""
    if not error.details:
        return error.message
    return "; ".join(f"{d.get('field')}: {d.get('message')}" for d in error.details)
