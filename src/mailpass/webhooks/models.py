"""An account's webhook endpoint, and the deliveries to it, as the repository reads them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

__all__ = ["Delivery", "DeliveryState", "Endpoint"]


class DeliveryState(StrEnum):
    PENDING = "pending"  # to be sent, or sent again at next_attempt_at
    DELIVERED = "delivered"  # the endpoint answered 2xx
    FAILED = "failed"  # given up: no 2xx for a day, or the endpoint was disabled


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: int
    user_id: int
    url: str
    event_types: tuple[str, ...]  # empty: every type
    enabled: bool
    failing_since: datetime | None
    disabled_reason: str | None
    created_at: datetime

    @classmethod
    def of(cls, row: Any) -> Endpoint:
        return cls(
            id=row.id,
            user_id=row.user_id,
            url=row.url,
            event_types=tuple(row.event_types or ()),
            enabled=row.enabled,
            failing_since=row.failing_since,
            disabled_reason=row.disabled_reason,
            created_at=row.created_at,
        )

    def wants(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event for one endpoint: what the dispatcher claimed, or what the log shows."""

    id: int
    endpoint_id: int
    webhook_id: str
    event_type: str
    payload: str
    state: DeliveryState
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None = None
    last_status: int | None = None
    last_error: str | None = None
    delivered_at: datetime | None = None
