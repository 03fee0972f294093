"""What MailPass knows of an SMTP provider, as the repository reads it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["Health", "Provider", "ProviderUsage"]


@dataclass(frozen=True, slots=True)
class Provider:
    id: int
    user_id: int
    name: str
    kind: str
    host: str
    port: int
    security: str
    username: str | None
    password_encrypted: str | None
    from_email: str | None
    from_name: str | None
    hourly_limit: int | None
    daily_limit: int | None
    is_default: bool
    created_at: datetime
    updated_at: datetime
    track_opens: bool = False
    track_clicks: bool = False
    # The circuit breaker's state (``providers.circuit``).
    failure_streak: int = 0
    down_count: int = 0
    down_until: datetime | None = None
    down_reason: str | None = None
    # Its webhook (``intake``): the token in the hook's URL, and the key payloads are checked with.
    hook_token: str | None = None
    hook_key_encrypted: str | None = None
    # Failover (``delivery.failover``): the providers that take its mail when it cannot.
    fallback_ids: list[int] | None = None

    @property
    def fallbacks(self) -> tuple[int, ...]:
        return tuple(self.fallback_ids or ())

    @property
    def has_limits(self) -> bool:
        return self.hourly_limit is not None or self.daily_limit is not None

    def is_down(self, now: datetime) -> bool:
        """Marked down until later than ``now``: its mail waits, /send refuses at once."""
        return self.down_until is not None and self.down_until > now

    @property
    def is_healthy(self) -> bool:
        """No failure noted since it last worked: nothing to reset when it works again."""
        return self.failure_streak == 0 and self.down_until is None


@dataclass(frozen=True, slots=True)
class ProviderUsage:
    """Slots of a provider's limits taken in the rolling windows (see ``providers.limits``)."""

    last_hour: int = 0
    last_day: int = 0


@dataclass(frozen=True, slots=True)
class Health:
    """The breaker's columns of a provider's row."""

    failure_streak: int = 0
    down_count: int = 0
    down_until: datetime | None = None
    down_reason: str | None = None
