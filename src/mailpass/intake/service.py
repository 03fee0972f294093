"""Webhook intake: a provider's payload, checked as that provider documents, recorded as the
events of the messages it is about, in one transaction.

What the events lead to: a hard bounce marks its message ``bounced`` and suppresses the
address; a complaint marks it ``complained`` and suppresses the address; an unsubscribe
suppresses the address; a reject after the provider took the mail marks it ``failed``; soft
bounces in a row (``soft_bounce_limit``) suppress the address, and a delivery starts the count
again. A payload that is unsigned, badly signed or replayed is refused (401) and records
nothing; one that cannot be read is refused (400).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from mailpass.clock import utcnow
from mailpass.config import Settings
from mailpass.core.statuses import EventType, MessageStatus
from mailpass.errors import Unauthorized, ValidationError
from mailpass.intake import mailgun, repository, sendgrid, ses
from mailpass.intake.dsn import Report, read_report
from mailpass.intake.models import BounceType, Intake, Parsed, ProviderEvent, utc_time
from mailpass.intake.repository import ReportedMessage
from mailpass.intake.sns import SnsVerifier
from mailpass.intake.verp import ReturnPaths
from mailpass.providers.hooks import HOOK_KINDS, sendgrid_public_key
from mailpass.providers.models import Provider
from mailpass.providers.repository import provider_by_id
from mailpass.providers.secrets import SecretBox
from mailpass.storage.database import Connection, Database
from mailpass.suppressions import repository as suppression_queries
from mailpass.suppressions.models import SuppressionReason
from mailpass.webhooks import repository as webhook_outbox
from mailpass.webhooks.payloads import event_payload

__all__ = ["RECEIPTS_KEPT", "IntakeService", "Owner"]

log = logging.getLogger("mailpass.intake")

# How long a payload's receipt is kept, so that its retry is recorded once and its replay
# refused; a payload signed longer ago than this is refused (its receipt would be gone).
RECEIPTS_KEPT = timedelta(days=3)
PRUNE_EVERY = timedelta(minutes=10)

_SUPPRESSING = {
    EventType.COMPLAINED: SuppressionReason.COMPLAINT,
    EventType.UNSUBSCRIBED: SuppressionReason.UNSUBSCRIBE,
}


@dataclass(frozen=True, slots=True)
class Owner:
    """Whose events a payload holds, and who reported them (each event's ``data`` says so)."""

    user_id: int
    provider_id: int | None  # receipts are kept per provider; None: none kept
    reported_by: dict[str, str]


class IntakeService:
    def __init__(
        self,
        settings: Settings,
        database: Database,
        secrets: SecretBox,
        return_paths: ReturnPaths,
    ) -> None:
        self.database = database
        self.secrets = secrets
        self.soft_bounce_limit = settings.soft_bounce_limit
        self.sns = SnsVerifier(settings)
        self.return_paths = return_paths
        # Each provider's key as last read, decoded: (the stored ciphertext, the key).
        self._keys: dict[int, tuple[str, Any]] = {}
        self._next_prune = utcnow()

    async def close(self) -> None:
        await self.sns.close()

    async def receive(
        self, provider_id: int, kind: str, token: str, headers: Mapping[str, str], body: bytes
    ) -> Intake:
        """Check and record one payload of the webhook at ``/hooks/{provider_id}/{kind}/
        {token}``. Raises Unauthorized or ValidationError (nothing recorded)."""
        async with self.database.read() as connection:
            provider = await provider_by_id(connection, provider_id)
        if (
            provider is None
            or provider.kind != kind
            or kind not in HOOK_KINDS
            or provider.hook_token is None
            or not hmac.compare_digest(token.encode(), provider.hook_token.encode())
        ):
            raise Unauthorized("no such webhook: copy its URL from `mailpass providers webhook`")
        now = utcnow()
        parsed = await self._parse(provider, headers, body, now)
        owner = Owner(provider.user_id, provider.id, {"provider": provider.kind})
        async with self.database.transaction() as connection:
            intake = await self._record(connection, owner, parsed, now)
            if now >= self._next_prune:
                self._next_prune = now + PRUNE_EVERY
                await repository.prune_receipts(connection, now - RECEIPTS_KEPT)
        return intake

    async def _parse(
        self, provider: Provider, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> Parsed:
        if provider.kind == "ses":
            return await self._sns(body, now)
        key = self._key(provider)
        if provider.kind == "sendgrid":
            signed_at = sendgrid.verify(key, headers, body)
            _check_fresh(signed_at, now)
            return sendgrid.parse(body)
        parsed, signed_at = mailgun.parse_and_verify(key, body)
        _check_fresh(signed_at, now)
        return parsed

    async def _sns(self, body: bytes, now: datetime) -> Parsed:
        message = self.sns.read(body)
        await self.sns.verify(message)
        _check_fresh(message.get("Timestamp"), now)
        if message["Type"] == "SubscriptionConfirmation":
            await self.sns.confirm(message)
            return Parsed(confirmed=True)
        if message["Type"] == "UnsubscribeConfirmation":
            log.info("SNS unsubscribed this webhook from %s", message.get("TopicArn"))
            return Parsed(ignored=1)
        parsed = ses.parse_notification(str(message["Message"]))
        parsed.receipt = f"sns:{message['MessageId']}"
        return parsed

    def _key(self, provider: Provider) -> Any:
        """The provider's webhook key, decoded once per stored value."""
        stored = provider.hook_key_encrypted
        if stored is None:
            raise Unauthorized(
                f"the provider has no webhook key: set it with `mailpass providers webhook "
                f"{provider.name} --key …`"
            )
        cached = self._keys.get(provider.id)
        if cached is not None and cached[0] == stored:
            return cached[1]
        plain = self.secrets.decrypt(stored)
        key: str | ec.EllipticCurvePublicKey = (
            sendgrid_public_key(plain) if provider.kind == "sendgrid" else plain
        )
        self._keys[provider.id] = (stored, key)
        return key

    async def receive_report(self, recipients: list[str], raw: bytes) -> Intake | None:
        """Record a bounce or complaint report mailed to the bounce domain (``dsn``); None
        when the mail is no report (it is dropped, never stored)."""
        report = read_report(raw)
        if report is None:
            return None
        pks = [self.return_paths.message_of(address) for address in recipients]
        pk = next((found for found in pks if found is not None), None)
        now = utcnow()
        async with self.database.transaction() as connection:
            message = await repository.reported_message(connection, pk, report.message_id)
            if message is None:
                return Intake(received=len(report.events), unmatched=len(report.events))
            parsed = _reported(report, message, now)
            owner = Owner(
                message.user_id, message.provider_id, {"provider": "smtp", "report": report.kind}
            )
            return await self._record(connection, owner, parsed, now)

    async def _record(
        self, connection: Connection, owner: Owner, parsed: Parsed, now: datetime
    ) -> Intake:
        intake = Intake(
            received=len(parsed.events) + parsed.ignored,
            ignored=parsed.ignored,
            confirmed=parsed.confirmed,
        )
        if (
            parsed.receipt is not None
            and owner.provider_id is not None
            and not await repository.new_receipts(
                connection, owner.provider_id, [parsed.receipt], now
            )
        ):
            if parsed.refuse_again:
                raise Unauthorized("this payload was received before: a replay is refused")
            intake.duplicates = len(parsed.events)
            return intake
        receipts = {e.receipt for e in parsed.events if e.receipt}
        fresh = (
            await repository.new_receipts(connection, owner.provider_id, receipts, now)
            if owner.provider_id is not None
            else receipts
        )
        new_events = [e for e in parsed.events if e.receipt is None or e.receipt in fresh]
        intake.duplicates = len(parsed.events) - len(new_events)
        found = await repository.messages_by_id(
            connection, owner.user_id, {e.message_id for e in new_events if e.message_id}
        )
        matched = [(e, *found[e.message_id]) for e in new_events if e.message_id in found]
        if owner.provider_id is not None and len(matched) < len(new_events):
            # Not by the Message-ID (SES gives the mail one of its own): by the provider's id.
            left = [e for e in new_events if e.message_id not in found and e.provider_message_id]
            by_provider_id = await repository.messages_by_provider_id(
                connection,
                owner.user_id,
                owner.provider_id,
                {e.provider_message_id for e in left if e.provider_message_id},
            )
            for event in left:
                known = by_provider_id.get(event.provider_message_id or "")
                if known is not None:
                    message_pk, sent_at, message_id = known
                    matched.append((replace(event, message_id=message_id), message_pk, sent_at))
        intake.unmatched = len(new_events) - len(matched)
        intake.recorded = len(matched)
        rows = [_row(owner, event, message_pk, sent_at) for event, message_pk, sent_at in matched]
        await repository.insert_events(connection, rows)
        # Their webhooks, in the same transaction: recorded means on its way to the account.
        await webhook_outbox.enqueue(
            connection,
            owner.user_id,
            [
                (
                    row["event_type"],
                    row["message_pk"],
                    event_payload(
                        row["event_type"], row["created_at"], event.message_id, row["data"]
                    ),
                )
                for row, (event, _, _) in zip(rows, matched, strict=True)
                if event.message_id is not None
            ],
            now,
        )
        await self._consequences(
            connection, owner.user_id, [(e, message_pk) for e, message_pk, _ in matched], now
        )
        return intake

    async def _consequences(
        self,
        connection: Connection,
        user_id: int,
        matched: list[tuple[ProviderEvent, int]],
        now: datetime,
    ) -> None:
        """The statuses and suppressions the recorded events lead to."""
        bounced, complained, rejected = set(), set(), set()
        suppress: dict[str, tuple[SuppressionReason, int]] = {}
        delivered: set[str] = set()
        for event, message_pk in matched:
            recipient = event.recipient.lower() if event.recipient else None
            if event.event_type == EventType.BOUNCED:
                if event.data.get("bounce_type") == BounceType.HARD:
                    bounced.add(message_pk)
                    if recipient:
                        suppress.setdefault(recipient, (SuppressionReason.HARD_BOUNCE, message_pk))
                elif recipient and (
                    await repository.soft_bounce(connection, user_id, recipient, now)
                    >= self.soft_bounce_limit
                ):
                    suppress.setdefault(recipient, (SuppressionReason.SOFT_BOUNCES, message_pk))
            elif event.event_type == EventType.DELIVERED and recipient:
                delivered.add(recipient)
            elif event.event_type == EventType.REJECTED:
                rejected.add(message_pk)
            if event.event_type == EventType.COMPLAINED:
                complained.add(message_pk)
            reason = _SUPPRESSING.get(event.event_type)
            if reason is not None and recipient:
                suppress.setdefault(recipient, (reason, message_pk))
        await repository.end_streaks(connection, user_id, delivered - suppress.keys())
        await repository.set_status(
            connection, bounced, MessageStatus.BOUNCED, only_from=[MessageStatus.SENT]
        )
        await repository.set_status(
            connection,
            complained,
            MessageStatus.COMPLAINED,
            only_from=[MessageStatus.SENT, MessageStatus.BOUNCED],
        )
        await repository.set_status(
            connection, rejected, MessageStatus.FAILED, only_from=[MessageStatus.SENT]
        )
        await suppression_queries.add_many(
            connection,
            [
                {"user_id": user_id, "email": email, "reason": reason, "message_pk": message_pk}
                for email, (reason, message_pk) in sorted(suppress.items())
            ],
            now,
        )


def _row(
    owner: Owner, event: ProviderEvent, message_pk: int, sent_at: datetime | None
) -> dict[str, Any]:
    """The ``events`` row of ``event``. Its time is the provider's, but never before the
    provider took the mail: providers give whole seconds, and clocks differ, and the story of
    a message reads in order. The provider's own time is kept when it was earlier."""
    data: dict[str, Any] = dict(owner.reported_by)
    if event.recipient is not None:
        data["recipient"] = event.recipient
    data.update(event.data)
    at = event.at
    if sent_at is not None and at < sent_at:
        data["reported_at"] = at.isoformat()
        at = sent_at
    return {
        "message_pk": message_pk,
        "event_type": event.event_type,
        "data": data,
        "created_at": at,
    }


def _reported(report: Report, message: ReportedMessage, now: datetime) -> Parsed:
    """A mailed report's events about ``message``: only of its own recipients (a report made
    up by one recipient cannot speak for another). A complaint that does not say whose (many
    abuse desks redact it) is its recipient's when it had one, and nobody's in particular
    otherwise (the message is marked, no address suppressed)."""
    recipients = {address.lower(): address for address in message.envelope_to}
    parsed = Parsed(receipt=f"report:{report.own_id}" if report.own_id else None)
    for reported in report.events:
        recipient = reported.recipient
        if recipient is None and len(recipients) == 1:
            recipient = next(iter(recipients.values()))
        if recipient is not None and recipient.lower() not in recipients:
            log.info(
                "a %s names %s, not a recipient of %s", report.kind, recipient, message.message_id
            )
            parsed.ignored += 1
            continue
        parsed.events.append(
            ProviderEvent(
                reported.event_type, now, message.message_id, recipient, data=dict(reported.data)
            )
        )
    return parsed


def _check_fresh(signed_at: object, now: datetime) -> None:
    """Refuse a payload signed longer ago than its receipt is kept: it could be replayed."""
    if isinstance(signed_at, str) and signed_at.isdigit():
        signed_at = int(signed_at)  # SendGrid's and Mailgun's: Unix seconds, as text
    try:
        at = utc_time(signed_at, "the signature's time")
    except ValidationError:
        raise Unauthorized(f"the payload's signing time is unreadable: {signed_at!r}") from None
    if at < now - RECEIPTS_KEPT or at > now + timedelta(minutes=15):
        raise Unauthorized(f"the payload was signed at {at.isoformat()}Z, too far from now")
