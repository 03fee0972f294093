"""The names of a message's states and of the events recorded about it: typed constants, the
same strings on the wire, in the database and in the dashboard.

``StrEnum`` members are ``str``: they compare equal to, bind and serialize as their value, so
rows written before these existed read back as members of the same names.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["EventType", "MessageStatus"]


class MessageStatus(StrEnum):
    """Where a message is: queued for the worker, being handed over, or done one way or the
    other."""

    QUEUED = "queued"  # waiting for the worker (first attempt, or a retry at next_attempt_at)
    SENDING = "sending"  # being handed to its provider, under a worker's lease or by /send
    SENT = "sent"  # the provider accepted it for at least one recipient
    FAILED = "failed"  # refused, undeliverable, or given up after the retry window
    CANCELLED = "cancelled"  # taken out of the queue by its sender before it was sent


class EventType(StrEnum):
    """What was recorded after the mail left: the seed's ``event_type`` values."""

    OPEN = "open"  # the tracking pixel was loaded
    CLICK = "click"  # a tracked link was followed
