"""A suppressed address and why it is on the list."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

__all__ = ["Suppression", "SuppressionReason"]


class SuppressionReason(StrEnum):
    """Why an address is on the list: the same strings on the wire and in the database."""

    HARD_BOUNCE = "hard_bounce"  # its server said it does not exist
    SOFT_BOUNCES = "soft_bounces"  # it bounced for now too many times in a row
    COMPLAINT = "complaint"  # its owner marked a message as spam
    UNSUBSCRIBE = "unsubscribe"  # its owner unsubscribed
    MANUAL = "manual"  # added by the account (API, dashboard)


@dataclass(frozen=True, slots=True)
class Suppression:
    email: str  # lower-cased
    reason: SuppressionReason
    created_at: datetime
    message_id: str | None = None  # the message that led to it, if any

    @classmethod
    def of(cls, row: Any) -> Suppression:
        return cls(
            email=row.email,
            reason=SuppressionReason(row.reason),
            created_at=row.created_at,
            message_id=row.message_id,
        )
