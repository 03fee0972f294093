"""The queue worker: claims due messages, sends them, records the outcome, retries later.

One worker runs inside ``mailpass serve`` (unless ``--no-worker``), as ``mailpass worker`` on any
machine that reaches the database, or once as ``mailpass queue run``.

- Up to ``concurrency`` messages are in flight at once; each provider's connections are capped
  by its transport's pool (``MAILPASS_SMTP_MAX_CONNECTIONS``).
- Outcomes are group-committed: whatever finished while the previous commit was running is
  written in the next one, so a fast provider costs one commit per batch, not per message.
- A crash leaves claimed messages ``sending`` under a lease; when it expires any worker claims
  them again. A message whose mail went out but whose outcome was not yet committed is sent a
  second time then: duplicates are bounded by the messages in flight at the crash.
- Stopping (SIGTERM) stops claiming, lets sends in flight finish (up to ``shutdown_grace``),
  puts back any that had to be cancelled and commits every outcome before returning.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from mailpass.clock import utcnow
from mailpass.config import Settings
from mailpass.delivery.queue import Claim, Outcome, OutcomeKind, claim_due_messages, write_outcomes
from mailpass.delivery.retry import RetryPolicy
from mailpass.delivery.wakeup import QueueWakeup
from mailpass.providers.registry import TransportRegistry
from mailpass.providers.transport import DeliveryError
from mailpass.storage.database import Database

__all__ = ["QueueWorker"]

SHUTDOWN_GRACE = 30.0  # seconds in-flight sends get to finish when the worker stops
# Claims and outcomes are transactions (a commit each), so both are batched: the worker claims
# again once half its places are free rather than every time one send ends, and the outcome
# writer lets outcomes gather this long before committing them together. Either way a message
# is only ever a few milliseconds later than it would have been.
OUTCOME_GATHER_WINDOW = 0.005  # seconds
# A send must finish well within its lease, or another worker could claim it meanwhile.
SEND_TIMEOUT_SHARE_OF_LEASE = 0.8

log = logging.getLogger("mailpass.delivery")


class QueueWorker:
    def __init__(
        self,
        *,
        settings: Settings,
        database: Database,
        transports: TransportRegistry,
        wakeup: QueueWakeup,
        concurrency: int | None = None,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.settings = settings
        self.database = database
        self.transports = transports
        self.wakeup = wakeup
        self.concurrency = concurrency or settings.worker_concurrency
        self.policy = policy or RetryPolicy.from_settings(settings)
        self.lease = timedelta(seconds=settings.queue_lease)
        self._refill_at = max(1, self.concurrency // 2)  # free places before claiming again
        self._in_flight: dict[asyncio.Task[Outcome], Claim] = {}
        self._pending: list[Outcome] = []
        self._outcome_ready = asyncio.Event()
        self._stopping = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self.sent = 0  # outcomes recorded, by kind, for logs and tests
        self.failed = 0
        self.retried = 0

    # ------------------------------------------------------------------ running

    async def run(self, *, until_idle: bool = False) -> None:
        """Work until ``stop()``; with ``until_idle``, until nothing is due or in flight."""
        writer = asyncio.get_running_loop().create_task(self._write_outcomes_forever())
        self.wakeup.start_listening()
        try:
            while not self._stopping.is_set():
                claimed = await self._claim_more()
                if until_idle and not claimed and not self._in_flight:
                    break
                if not claimed:
                    await self._wait_for_work()
        finally:
            await self._finish_in_flight()
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            await self._flush_outcomes()
            await self.wakeup.stop_listening()

    def stop(self) -> None:
        self._stopping.set()
        self.wakeup.wake()

    async def _claim_more(self) -> int:
        free = self.concurrency - len(self._in_flight)
        if free < self._refill_at and self._in_flight:
            return 0
        async with self.database.transaction() as connection:
            claims = await claim_due_messages(
                connection,
                limit=free,
                now=utcnow(),
                lease=self.lease,
                skip_locked=not self.database.is_sqlite,
            )
        loop = asyncio.get_running_loop()
        for claim in claims:
            task = loop.create_task(self._attempt(claim))
            self._in_flight[task] = claim
            task.add_done_callback(self._on_done)
        return len(claims)

    async def _wait_for_work(self) -> None:
        """Until new mail is announced, an in-flight send frees a place, or the poll interval."""
        interval = self.settings.queue_poll_interval
        if self._in_flight and self.concurrency - len(self._in_flight) < self._refill_at:
            self._slot_freed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._slot_freed.wait(), interval)
            return
        await self.wakeup.wait(interval)

    def _on_done(self, task: asyncio.Task[Outcome]) -> None:
        claim = self._in_flight.pop(task)
        self._slot_freed.set()
        if task.cancelled():
            self._record(Outcome(claim, OutcomeKind.RELEASED, next_attempt_at=utcnow()))
            return
        error = task.exception()
        if error is not None:  # _attempt handles everything; this is a bug, not a send failure
            log.error("delivery of %s crashed", claim.message_id, exc_info=error)
            self._record(self._retry(claim, f"internal error: {error!r}"))
            return
        self._record(task.result())

    # ------------------------------------------------------------------ one message

    async def _attempt(self, claim: Claim) -> Outcome:
        try:
            claim = claim.composed()
        except ValueError as exc:  # what was checked when it was accepted: not expected
            return Outcome(claim, OutcomeKind.FAILED, f"the message cannot be composed: {exc}")
        if claim.is_test:  # test keys: the capture inbox, never the network
            return Outcome(claim, OutcomeKind.SENT, finished_at=utcnow())
        if claim.provider is None:
            return Outcome(
                claim, OutcomeKind.FAILED, "its SMTP provider was deleted before it was sent"
            )
        if not claim.raw or not claim.envelope_to:
            return Outcome(claim, OutcomeKind.FAILED, "the message was stored without its content")
        transport = self.transports.get(claim.provider)
        timeout = self.settings.queue_lease * SEND_TIMEOUT_SHARE_OF_LEASE
        try:
            result = await asyncio.wait_for(
                transport.send(claim.envelope_from, claim.envelope_to, claim.raw), timeout
            )
        except DeliveryError as exc:
            if exc.transient:
                return self._retry(claim, exc.reply)
            return Outcome(claim, OutcomeKind.FAILED, exc.reply)
        except TimeoutError:
            return self._retry(claim, f"no answer from the provider within {timeout:.0f} seconds")
        return Outcome(claim, OutcomeKind.SENT, result.refusal_note(), finished_at=utcnow())

    def _retry(self, claim: Claim, reply: str) -> Outcome:
        attempts = claim.attempts + 1
        decision = self.policy.decide(attempts=attempts, queued_at=claim.created_at, now=utcnow())
        if decision.retry_at is None:
            return Outcome(
                claim, OutcomeKind.FAILED, f"gave up after {attempts} attempts; last reply: {reply}"
            )
        return Outcome(claim, OutcomeKind.RETRY, reply, next_attempt_at=decision.retry_at)

    # ------------------------------------------------------------------ outcomes

    def _record(self, outcome: Outcome) -> None:
        if outcome.kind == OutcomeKind.SENT:
            self.sent += 1
        elif outcome.kind == OutcomeKind.FAILED:
            self.failed += 1
        elif outcome.kind == OutcomeKind.RETRY:
            self.retried += 1
        self._pending.append(outcome)
        self._outcome_ready.set()

    async def _write_outcomes_forever(self) -> None:
        while True:
            await self._outcome_ready.wait()
            if len(self._pending) < self._refill_at:
                await asyncio.sleep(OUTCOME_GATHER_WINDOW)
            self._outcome_ready.clear()
            try:
                await self._flush_outcomes()
            except Exception:
                # The outcomes stay pending and are tried again; the leases keep the messages
                # from being claimed twice meanwhile.
                log.exception("cannot record delivery outcomes; retrying")
                await asyncio.sleep(1.0)
                self._outcome_ready.set()

    async def _flush_outcomes(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        try:
            async with self.database.transaction() as connection:
                await write_outcomes(connection, batch)
        except BaseException:
            self._pending[:0] = batch
            raise

    async def _finish_in_flight(self) -> None:
        if not self._in_flight:
            return
        tasks = list(self._in_flight)
        _done, still_running = await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE)
        for task in still_running:
            task.cancel()
        if still_running:
            await asyncio.wait(still_running)
