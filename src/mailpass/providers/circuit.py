"""The circuit breaker of a provider: stop sending to one that does not answer, try it again later.

A provider is *unreachable* on an attempt when the connection is refused, dropped or times out,
or the server says 421 (closing, try later): the provider's trouble, not the message's. A 4xx
or 5xx about one message (a mailbox, its content) is the message's and counts for nothing here.

::

    closed   ── threshold failures in a row ──▶  down until now + pause(1)
    down     ── its time passes ──▶  one worker sends one message (the probe)
    probe    ── works ──▶  closed        ── fails ──▶  down until now + pause(n + 1)

The pause doubles each time the provider is marked down in a row, from the first to the longest
(``MAILPASS_PROVIDER_DOWN_FIRST`` 30 s, ``MAILPASS_PROVIDER_DOWN_MOST`` 10 min). While a
provider is down its queued mail waits without taking a worker's place, ``/status`` says why
(``held_reason``) and until when (``next_attempt_at``), and ``/send`` refuses at once.

The state lives in the provider's row, so that every worker and every API process sees it; a
worker's claim takes the probe (and, for the probe's length, holds the provider down for the
others), and the outcomes it writes move the state on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from mailpass.config import Settings
from mailpass.providers import repository
from mailpass.providers.models import Health
from mailpass.storage.database import Connection

__all__ = [
    "DEFAULT_PROBE_WINDOW",
    "CircuitPolicy",
    "ProviderAttempts",
    "describe_down",
    "note_attempts",
]

# How long a probe keeps a provider down for everyone else, unless the settings say otherwise.
DEFAULT_PROBE_WINDOW = timedelta(minutes=2)


@dataclass(frozen=True, slots=True)
class CircuitPolicy:
    threshold: int = 3  # unreachable attempts in a row that mark a provider down
    first_pause: float = 30.0  # seconds
    longest_pause: float = 600.0  # seconds
    # How long a probe keeps the provider down for everyone else: long enough for one attempt
    # to fail by itself (a connection and a few commands timing out).
    probe_window: timedelta = DEFAULT_PROBE_WINDOW

    @classmethod
    def from_settings(cls, settings: Settings) -> CircuitPolicy:
        return cls(
            threshold=settings.provider_failure_threshold,
            first_pause=settings.provider_down_first,
            longest_pause=max(settings.provider_down_first, settings.provider_down_most),
            probe_window=timedelta(
                seconds=settings.smtp_connect_timeout + 3 * settings.smtp_timeout
            ),
        )

    def pause(self, down_count: int) -> timedelta:
        """How long a provider marked down for the ``down_count``-th time in a row stays down."""
        doublings = min(max(down_count - 1, 0), 32)  # 2**32 pauses are past any longest pause
        return timedelta(seconds=min(self.first_pause * 2**doublings, self.longest_pause))

    def after_failures(
        self, health: Health, failures: int, reason: str, now: datetime, *, probe: bool
    ) -> Health:
        """The state after ``failures`` unreachable attempts (the last failing with ``reason``).

        A failed probe marks the provider down again for a longer pause. Otherwise attempts
        that were already on their way when it was marked down only count: they do not
        lengthen a pause that is running.
        """
        streak = health.failure_streak + failures
        if probe or (streak >= self.threshold and not _down_at(health, now)):
            down_count = health.down_count + 1
            return Health(streak, down_count, now + self.pause(down_count), reason)
        return Health(streak, health.down_count, health.down_until, health.down_reason)


def _down_at(health: Health, now: datetime) -> bool:
    return health.down_until is not None and health.down_until > now


def describe_down(name: str, until: datetime | None, reason: str | None) -> str:
    """One line for ``held_reason``, ``/send``'s refusal and the dashboard."""
    when = f" until {until.replace(microsecond=0).isoformat()}Z" if until else ""
    why = f": {reason}" if reason else ""
    return f"provider {name!r} is down{when} after failing to answer{why}"


@dataclass(slots=True)
class ProviderAttempts:
    """What a group of attempts through one provider said of it."""

    worked: bool = False  # at least one attempt reached it
    failures: int = 0  # attempts that found it unreachable
    probe_failed: bool = False
    reason: str = ""  # the last failure's reply

    def failed(self, reason: str, *, probe: bool) -> None:
        self.failures += 1
        self.reason = reason
        self.probe_failed = self.probe_failed or probe


async def note_attempts(
    connection: Connection,
    policy: CircuitPolicy,
    attempts: dict[int, ProviderAttempts],
    now: datetime,
    *,
    lock: bool,
) -> dict[int, datetime]:
    """Move the providers' breakers on, in the caller's transaction; the providers this marked
    down, with until when. Providers in ``attempts`` order by id (a fixed lock order)."""
    reached = sorted(pid for pid, seen in attempts.items() if seen.worked)
    if reached:
        await repository.mark_reachable(connection, reached, now)
    marked: dict[int, datetime] = {}
    for provider_id in sorted(attempts):
        seen = attempts[provider_id]
        if seen.worked or not seen.failures:
            continue
        health = await repository.read_health(connection, provider_id, lock=lock)
        if health is None:
            continue
        after = policy.after_failures(
            health, seen.failures, seen.reason, now, probe=seen.probe_failed
        )
        await repository.write_health(connection, provider_id, after)
        if after.down_until is not None and after.down_until != health.down_until:
            marked[provider_id] = after.down_until
    return marked
