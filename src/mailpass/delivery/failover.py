"""Failover: mail its provider cannot take now goes to the provider's fallbacks, in order.

A message fails over when its provider cannot be reached (refused, timed out, dropped), puts
it off (any 4xx, 421 included), is marked down (``providers.circuit``) or has reached its
hourly or daily limit; never on a 5xx, which says the message is wrong, not the provider.

Each fallback's own limits count: the message is recorded under the fallback, taking one of
its slots, before it is handed over (``queue.move_claim``), and is recorded under its own
provider again if no fallback took it. The record of a message sent so says which provider
carried it, and why its own did not.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from mailpass.clock import utcnow
from mailpass.delivery.queue import Claim, Outcome, OutcomeKind, move_claim
from mailpass.intake.verp import ReturnPaths
from mailpass.providers.limits import LimitReached
from mailpass.providers.models import Provider
from mailpass.providers.registry import TransportRegistry
from mailpass.providers.transport import DeliveryError, DeliveryResult
from mailpass.storage.database import Database

__all__ = ["FailoverResult", "Fallbacks"]


@dataclass(slots=True)
class FailoverResult:
    outcome: Outcome | None = None  # FAILED: a fallback refused it for good
    carrier: Provider | None = None  # the fallback that took it, and what it answered
    sent: DeliveryResult | None = None
    tried: list[str] = field(default_factory=list)  # "backup: its daily limit …", each one
    moved: bool = False  # recorded under a fallback meanwhile: to be put back under its own

    def describe(self) -> str:
        return "; ".join(self.tried) if self.tried else "none could be tried"


@dataclass(frozen=True, slots=True)
class Fallbacks:
    database: Database
    transports: TransportRegistry
    return_paths: ReturnPaths | None
    timeout: float  # seconds a send may take
    lock: bool  # lock the fallback's row while taking its slot (PostgreSQL)

    async def hand_over(self, claim: Claim, why: str, *, unreachable: bool) -> FailoverResult:
        """Try ``claim``'s fallbacks in order: the first that took it and its answer, or the
        FAILED outcome when one refused it for good (a 5xx); neither when none could take it
        now.
        ``unreachable``: its own provider did not answer (its circuit breaker hears of it)."""
        primary = claim.provider
        assert primary is not None
        result = FailoverResult(None)
        for fallback in claim.fallbacks:
            now = utcnow()
            if fallback.is_down(now):
                result.tried.append(f"{fallback.name}: marked down")
                continue
            async with self.database.transaction() as connection:
                taken = await move_claim(connection, claim, fallback, now, lock=self.lock)
            if isinstance(taken, LimitReached):
                result.tried.append(f"{fallback.name}: {taken.describe()}")
                continue
            if not taken:  # taken back by another worker: this attempt's outcome cannot land
                return result
            result.moved = True
            envelope_from = claim.envelope_from
            if self.return_paths is not None:
                envelope_from = self.return_paths.envelope_sender(
                    fallback.kind, claim.id, envelope_from
                )
            transport = self.transports.get(fallback)
            try:
                sent = await asyncio.wait_for(
                    transport.send(envelope_from, claim.recipients, claim.raw), self.timeout
                )
            except DeliveryError as exc:
                if exc.transient:
                    result.tried.append(f"{fallback.name}: {exc.reply}")
                    continue
                result.outcome = Outcome(
                    claim,
                    OutcomeKind.FAILED,
                    f"{fallback.name}, fallback of {primary.name} ({why}), refused it: {exc.reply}",
                    unreachable=unreachable,
                    failed_over=True,
                )
                return result
            except TimeoutError:
                result.tried.append(f"{fallback.name}: no answer within {self.timeout:.0f} s")
                continue
            result.carrier, result.sent = fallback, sent
            return result
        return result
