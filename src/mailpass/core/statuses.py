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
    BOUNCED = "bounced"  # sent, then its provider reported a hard bounce of a recipient
    COMPLAINED = "complained"  # sent, then a recipient marked it as spam
    FAILED = "failed"  # refused, undeliverable, or given up after the retry window
    # Not sent: by its turn in the queue, every recipient was on the account's suppression list
    SUPPRESSED = "suppressed"
    CANCELLED = "cancelled"  # taken out of the queue by its sender before it was sent

    @classmethod
    def delivered_ones(cls) -> tuple[MessageStatus, ...]:
        """The statuses of a message its provider took: sent, and what can follow."""
        return (cls.SENT, cls.BOUNCED, cls.COMPLAINED)


class EventType(StrEnum):
    """What happened to a message, as its events name it: one vocabulary for ``/status``, the
    dashboard's timeline and (as they land) bounce intake and webhooks.

    Opens and clicks keep the seed's names, ``open`` and ``click``. ``queued``,
    ``scheduled`` and ``sent`` are told from the message's own row (when it was accepted, when
    the provider took it, and its reply); the others are rows of their own.
    """

    QUEUED = "queued"  # accepted into the queue (a batch item)
    SCHEDULED = "scheduled"  # accepted into the queue until its scheduled time
    SENT = "sent"  # the provider accepted it (``smtp_reply``: its answer)
    DEFERRED = "deferred"  # an attempt failed for now (``reason``, ``next_attempt_at``)
    DELIVERED = "delivered"  # the provider reports it delivered to the recipient's server
    BOUNCED = "bounced"  # the recipient's server refused it after the provider took it
    COMPLAINED = "complained"  # the recipient marked it as spam
    REJECTED = "rejected"  # the provider refused it after taking it (e.g. a virus)
    FAILED = "failed"  # refused, or given up after the retry window (``reason``)
    SUPPRESSED = "suppressed"  # not sent: the address is on the account's suppression list
    CANCELLED = "cancelled"  # taken out of the queue by its sender before it was sent
    OPEN = "open"  # the tracking pixel was loaded
    CLICK = "click"  # a tracked link was followed
    UNSUBSCRIBED = "unsubscribed"  # the recipient used the message's one-click unsubscribe
