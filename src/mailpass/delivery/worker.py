"""The queue worker: claims due messages, sends them, records the outcome, retries later.

One worker runs inside ``mailpass serve`` (unless ``--no-worker``), as ``mailpass worker`` on any
machine that reaches the database, or once as ``mailpass queue run``.

- Up to ``concurrency`` messages are in flight at once, at most half of them for any one
  provider, so that a provider that hangs never holds every place; each provider's
  connections are capped by its transport's pool (``MAILPASS_SMTP_MAX_CONNECTIONS``).
- A provider that stops answering is marked down (``providers.circuit``): its mail waits
  without taking places, one message probes it once its pause is over, and the sends of it
  this worker already holds give their places back at once instead of each timing out.
- Outcomes are group-committed: whatever finished while the previous commit was running is
  written in the next one, so a fast provider costs one commit per batch, not per message.
- Each worker registers and beats every ``MAILPASS_WORKER_HEARTBEAT_INTERVAL`` seconds
  (``delivery.workers``). A crash leaves claimed messages ``sending``; once the dead worker
  missed three beats, any live worker takes them back (and a worker started on the same host
  does so at once); the lease stays the last resort. A message whose mail went out but whose
  outcome was not yet committed is sent a second time then: duplicates are bounded by the
  messages in flight at the crash.
- The database going away stops nothing for good: claiming, writing outcomes and beating each
  log one line when they start failing and one when they work again, and retry meanwhile.
- Stopping (SIGTERM) stops claiming, lets sends in flight finish (up to ``shutdown_grace``),
  puts back any that had to be cancelled and commits every outcome before returning.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
from collections import Counter
from dataclasses import replace
from datetime import timedelta

from mailpass.clock import utcnow
from mailpass.config import Settings
from mailpass.delivery import workers
from mailpass.delivery.failover import Fallbacks
from mailpass.delivery.queue import (
    Claim,
    Claimed,
    Outcome,
    OutcomeKind,
    claim_due_messages,
    release_claims,
    write_outcomes,
)
from mailpass.delivery.retry import RetryPolicy
from mailpass.delivery.wakeup import QueueWakeup
from mailpass.intake.verp import ReturnPaths
from mailpass.providers.circuit import CircuitPolicy, describe_down
from mailpass.providers.registry import TransportRegistry
from mailpass.providers.transport import DeliveryError, DeliveryResult, ProviderHeld
from mailpass.runtime.logs import MESSAGE_ID
from mailpass.runtime.metrics import DELIVERIES
from mailpass.runtime.outages import Outage, backoff_delays
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
# After a failed claim (the database unreachable), the next attempt comes after these pauses:
# once it is back, the queue moves again within the last of them.
CLAIM_RETRY_FIRST = 0.25  # seconds
CLAIM_RETRY_MOST = 2.0  # seconds
OUTCOME_RETRY_PAUSE = 1.0  # seconds between attempts to write outcomes the database refused
UNSURE_CLAIMS_KEPT = 16  # tokens of failed claims remembered, to release once the database is back
# The share of the worker's places one provider may hold: the others always have the rest.
PROVIDER_SHARE = 0.5

log = logging.getLogger("mailpass.delivery")
QUEUE_SENT = DELIVERIES.labels("sent")
QUEUE_FAILED = DELIVERIES.labels("failed")
QUEUE_RETRIED = DELIVERIES.labels("retry")


def _check_alive(*tasks: asyncio.Task[None]) -> None:
    """The worker's own tasks never end while it runs (they retry whatever fails); one that did
    is a bug. The worker stops with it rather than claim mail whose outcomes nobody writes (its
    supervisor starts it again, or the process exits non-zero)."""
    for task in tasks:
        if task.done():
            error = None if task.cancelled() else task.exception()
            raise RuntimeError(f"the worker's task {task.get_name()} ended") from error


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
        return_paths: ReturnPaths | None = None,
    ) -> None:
        self.settings = settings
        self.return_paths = return_paths
        self.database = database
        self.transports = transports
        self.wakeup = wakeup
        self.concurrency = concurrency or settings.worker_concurrency
        self.policy = policy or RetryPolicy.from_settings(settings)
        self.lease = timedelta(seconds=settings.queue_lease)
        self.circuit = CircuitPolicy.from_settings(settings)
        self.fallbacks = Fallbacks(
            database=database,
            transports=transports,
            return_paths=return_paths,
            timeout=settings.queue_lease * SEND_TIMEOUT_SHARE_OF_LEASE,
            lock=not database.is_sqlite,
        )
        # Places one provider may hold; then free places (or a provider's room) worth a claim.
        self._provider_places = max(1, int(self.concurrency * PROVIDER_SHARE))
        self._refill_at = max(1, self._provider_places // 2)
        self._in_flight: dict[asyncio.Task[Outcome], Claim] = {}
        self._busy: Counter[int] = Counter()  # messages in flight per provider id
        # Providers whose due mail the last claim left for lack of room, when that was all it
        # left: until new mail is announced, claiming again is worth it only once they have room.
        self._only_capped: frozenset[int] = frozenset()
        self._capped_since = 0.0  # when ``_only_capped`` was last found (monotonic)
        self._pending: list[Outcome] = []
        self._outcome_ready = asyncio.Event()
        self._stopping = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self.sent = 0  # outcomes recorded, by kind, for logs and tests
        self.failed = 0
        self.retried = 0
        self.worker_id: int | None = None  # its row in ``workers`` once registered
        self.heartbeat_interval = settings.worker_heartbeat_interval
        self.stale_after = workers.stale_after(self.heartbeat_interval)
        self._claims = Outage(log, "claiming queued mail")
        self._unsure_claims: list[str] = []  # tokens of claims that failed as they committed
        self._outcomes = Outage(log, "recording delivery outcomes")
        self._beats = Outage(log, "the worker's heartbeat")

    # ------------------------------------------------------------------ running

    async def run(self, *, until_idle: bool = False) -> None:
        """Work until ``stop()``; with ``until_idle``, until nothing is due or in flight."""
        loop = asyncio.get_running_loop()
        await self._register()
        writer = loop.create_task(self._write_outcomes_forever(), name="outcome writer")
        heart = loop.create_task(self._beat_forever(), name="heartbeat")
        self.wakeup.start_listening()
        delays = backoff_delays(CLAIM_RETRY_FIRST, CLAIM_RETRY_MOST)
        failures = 0
        try:
            while not self._stopping.is_set():
                _check_alive(writer, heart)
                try:
                    claimed = await self._claim_more()
                except Exception as exc:  # the database unreachable, and the like
                    if until_idle:
                        raise
                    self._claims.failed(exc)
                    await self._pause(delays[min(failures, len(delays) - 1)])
                    failures += 1
                    continue
                failures = 0
                self._claims.recovered()
                if until_idle and not claimed and not self._in_flight:
                    break
                if not claimed:
                    await self._wait_for_work()
        finally:
            await self._finish_in_flight()
            for task in (writer, heart):
                task.cancel()
                # What it died of, if it did, was raised above.
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await self._flush_outcomes()
            await self._unregister()
            await self.wakeup.stop_listening()

    def stop(self) -> None:
        self._stopping.set()
        self.wakeup.wake()

    async def _pause(self, seconds: float) -> None:
        """Until ``seconds`` pass or the worker is stopped."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    # ------------------------------------------------------------------ liveness

    async def _register(self) -> None:
        """The worker's row, taking back first what workers of this host that died held."""
        host, pid, now = workers.this_host(), os.getpid(), utcnow()
        async with self.database.transaction() as connection:
            dead = await workers.dead_workers(
                connection, now, self.stale_after, host=host, own_pid=pid
            )
            taken = await workers.take_back(connection, dead, now)
            self.worker_id = await workers.register_worker(connection, host, pid, now)
        if taken:
            log.warning("took back %d messages of %d workers that died", taken, len(dead))

    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            try:
                await self._beat()
            except Exception as exc:  # the database unreachable: the next beat tries again
                self._beats.failed(exc)
            else:
                self._beats.recovered()

    async def _beat(self) -> None:
        """Beat, and take back the messages of workers that stopped beating."""
        assert self.worker_id is not None
        now = utcnow()
        async with self.database.transaction() as connection:
            if not await workers.beat(connection, self.worker_id, now):
                # Taken for dead (a long outage on our side): our claims are due again. An
                # outcome of ours still lands if nobody claimed the message since (its claim
                # token is unchanged); else the new claim's token refuses it. Start afresh.
                self.worker_id = await workers.register_worker(
                    connection, workers.this_host(), os.getpid(), now
                )
                log.warning("this worker had been taken for dead; registered again")
            dead = await workers.dead_workers(connection, now, self.stale_after)
            taken = await workers.take_back(connection, dead, now)
        if taken:
            log.warning(
                "took back %d messages of %d workers that stopped beating", taken, len(dead)
            )
            self.wakeup.wake()

    async def _unregister(self) -> None:
        if self.worker_id is None:
            return
        try:
            async with self.database.transaction() as connection:
                await workers.unregister_worker(connection, self.worker_id)
        except Exception as exc:  # its beats stop: it will be taken for dead, harmlessly
            log.warning("cannot unregister this worker (%s)", exc)

    def _room(self, provider_id: int) -> int:
        return self._provider_places - self._busy[provider_id]

    def _worth_claiming(self) -> bool:
        if not self._in_flight:
            return True
        if self.concurrency - len(self._in_flight) < self._refill_at:
            return False
        return not self._only_capped or any(
            self._room(provider_id) >= self._refill_at for provider_id in self._only_capped
        )

    async def _claim_more(self) -> int:
        if not self._worth_claiming():
            return 0
        free = self.concurrency - len(self._in_flight)
        limit, look_past = free, True
        if self._only_capped and (
            time.monotonic() - self._capped_since < self.settings.queue_poll_interval
        ):
            # All that was due is theirs (as of a moment ago): ask for what they have room
            # for, without looking past them. Once a poll interval, a whole look again.
            limit = min(free, sum(max(self._room(p), 0) for p in self._only_capped))
            look_past = False
        token = secrets.token_hex(16)
        try:
            async with self.database.transaction() as connection:
                now = utcnow()
                # A claim whose COMMIT was cut off may have committed: those messages would
                # wait for their lease, held by a worker that never got them. Due again now.
                await release_claims(connection, self._unsure_claims, now)
                claimed = await claim_due_messages(
                    connection,
                    limit=limit,
                    now=now,
                    lease=self.lease,
                    skip_locked=not self.database.is_sqlite,
                    worker_id=self.worker_id,
                    token=token,
                    room=self._room,
                    probe_window=self.circuit.probe_window,
                    look_past=look_past,
                )
        except BaseException:
            # Only the first failures of an outage can have committed (the later ones do not
            # get a connection): a few tokens are enough to remember.
            if len(self._unsure_claims) < UNSURE_CLAIMS_KEPT:
                self._unsure_claims.append(token)
            raise
        self._unsure_claims.clear()
        self._note_capped(claimed, limit, look_past)
        loop = asyncio.get_running_loop()
        for claim in claimed.claims:
            task = loop.create_task(self._attempt(claim))
            self._in_flight[task] = claim
            if claim.provider is not None:
                self._busy[claim.provider.id] += 1
            task.add_done_callback(self._on_done)
        return len(claimed.claims)

    def _note_capped(self, claimed: Claimed, asked: int, looked_past: bool) -> None:
        # A claim that took fewer than it asked for saw all the due mail there was: if some was
        # left for lack of room, nothing else is due until new mail comes or time passes.
        if claimed.capped and len(claimed.claims) < asked:
            if looked_past or not self._only_capped:
                self._capped_since = time.monotonic()
            self._only_capped = claimed.capped
        elif looked_past or not claimed.claims:
            self._only_capped = frozenset()

    async def _wait_for_work(self) -> None:
        """Until new mail is announced, an in-flight send frees a place worth a claim, or the
        poll interval."""
        interval = self.settings.queue_poll_interval
        if self._in_flight and not self._worth_claiming():
            self._slot_freed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._slot_freed.wait(), interval)
            if not self._slot_freed.is_set():
                self._only_capped = frozenset()  # the poll: look at the whole queue again
            return
        await self.wakeup.wait(interval)
        self._only_capped = frozenset()

    def _on_done(self, task: asyncio.Task[Outcome]) -> None:
        claim = self._in_flight.pop(task)
        if claim.provider is not None:
            self._busy[claim.provider.id] -= 1
            if not self._busy[claim.provider.id]:
                del self._busy[claim.provider.id]
        if self._worth_claiming():
            self._slot_freed.set()
        if task.cancelled():
            self._record(Outcome(claim, OutcomeKind.RELEASED, next_attempt_at=utcnow()))
            return
        error = task.exception()
        if error is not None:  # _attempt handles everything; this is a bug, not a send failure
            log.error(
                "delivery of %s crashed",
                claim.message_id,
                exc_info=error,
                extra={"message_id": claim.message_id},
            )
            self._record(self._retry(claim, f"internal error: {error!r}"))
            return
        self._record(task.result())

    # ------------------------------------------------------------------ one message

    async def _attempt(self, claim: Claim) -> Outcome:
        MESSAGE_ID.set(claim.message_id)  # this task's log lines name it (``runtime.logs``)
        if claim.envelope_to and not claim.recipients:
            return Outcome(
                claim,
                OutcomeKind.SUPPRESSED,
                "not sent: every recipient is on the suppression list ("
                + ", ".join(sorted(claim.suppressed))
                + ")",
            )
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
        provider = claim.provider
        if claim.fail_over_because is not None:
            # Its provider is down or at its limit, and has fallbacks: they take it.
            held = Outcome(
                claim,
                OutcomeKind.RELEASED,
                next_attempt_at=utcnow() + timedelta(seconds=self.settings.retry_base_delay),
                held_reason=claim.fail_over_because,
            )
            return await self._fail_over(claim, claim.fail_over_because, False, held)
        transport = self.transports.get(provider)
        if claim.probe:
            transport.hold("", 0)  # this one is to find out whether it answers again
        timeout = self.settings.queue_lease * SEND_TIMEOUT_SHARE_OF_LEASE
        envelope_from = claim.envelope_from
        if self.return_paths is not None:
            envelope_from = self.return_paths.envelope_sender(
                provider.kind, claim.id, envelope_from
            )
        try:
            result = await asyncio.wait_for(
                transport.send(envelope_from, claim.recipients, claim.raw), timeout
            )
        except ProviderHeld as held:
            until = utcnow() + timedelta(seconds=max(held.until - time.monotonic(), 0))
            why = describe_down(provider.name, until, held.reply)
            released = Outcome(claim, OutcomeKind.RELEASED, next_attempt_at=until, held_reason=why)
            return await self._fail_over(claim, why, False, released)
        except DeliveryError as exc:
            if exc.transient:
                retry = self._retry(claim, exc.reply, unreachable=exc.unreachable)
                return await self._fail_over(claim, exc.reply, exc.unreachable, retry)
            return Outcome(claim, OutcomeKind.FAILED, exc.reply, unreachable=exc.unreachable)
        except TimeoutError:
            reply = f"no answer from the provider within {timeout:.0f} seconds"
            retry = self._retry(claim, reply, unreachable=True)
            return await self._fail_over(claim, reply, True, retry)
        return self._delivered(claim, result)

    def _delivered(self, claim: Claim, result: DeliveryResult, note: str | None = None) -> Outcome:
        """The outcome of a send some server accepted (``note``: what the record says first)."""
        said = "; ".join(part for part in (note, result.refusal_note()) if part) or None
        if result.deferred:
            # Delivered to some recipients (direct delivery's domains), deferred for others:
            # the retry goes to those alone.
            delivered = tuple(
                rcpt
                for rcpt in claim.recipients
                if rcpt not in result.deferred and rcpt not in result.refused
            )
            retry = self._retry(claim, said or "", unreachable=False)
            return replace(retry, delivered=delivered, failed_over=note is not None)
        return Outcome(
            claim,
            OutcomeKind.SENT,
            said,
            finished_at=utcnow(),
            reply=result.reply,
            failed_over=note is not None,
        )

    async def _fail_over(
        self, claim: Claim, why: str, unreachable: bool, otherwise: Outcome
    ) -> Outcome:
        """Hand the message to its provider's fallbacks (``delivery.failover``); ``otherwise``
        when it has none or none could take it, with what each said."""
        if not claim.fallbacks or claim.provider is None:
            return otherwise
        handed = await self.fallbacks.hand_over(claim, why, unreachable=unreachable)
        if handed.outcome is not None:
            return handed.outcome
        if handed.carrier is not None and handed.sent is not None:
            note = f"sent through {handed.carrier.name}, fallback of {claim.provider.name} ({why})"
            return replace(self._delivered(claim, handed.sent, note), unreachable=unreachable)
        tried = f"fallbacks: {handed.describe()}"
        back = claim.provider.id if handed.moved else None
        if otherwise.kind == OutcomeKind.RELEASED:
            return replace(
                otherwise, held_reason=f"{otherwise.held_reason}; {tried}", provider_id=back
            )
        return replace(
            otherwise, error_message=f"{otherwise.error_message}; {tried}", provider_id=back
        )

    def _retry(self, claim: Claim, reply: str, *, unreachable: bool = False) -> Outcome:
        attempts = claim.attempts + 1
        # A scheduled message keeps the whole retry window from the time it was due.
        queued_at = claim.scheduled_at or claim.created_at
        decision = self.policy.decide(attempts=attempts, queued_at=queued_at, now=utcnow())
        if decision.retry_at is None:
            return Outcome(
                claim,
                OutcomeKind.FAILED,
                f"gave up after {attempts} attempts; last reply: {reply}",
                unreachable=unreachable,
            )
        return Outcome(
            claim,
            OutcomeKind.RETRY,
            reply,
            next_attempt_at=decision.retry_at,
            unreachable=unreachable,
        )

    # ------------------------------------------------------------------ outcomes

    def _record(self, outcome: Outcome) -> None:
        if outcome.kind == OutcomeKind.SENT:
            self.sent += 1
            QUEUE_SENT.inc()
        elif outcome.kind == OutcomeKind.FAILED:
            self.failed += 1
            QUEUE_FAILED.inc()
        elif outcome.kind == OutcomeKind.RETRY:
            self.retried += 1
            QUEUE_RETRIED.inc()
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
            except Exception as exc:
                # The outcomes stay pending and are tried again; the leases keep the messages
                # from being claimed twice meanwhile.
                self._outcomes.failed(exc)
                await asyncio.sleep(OUTCOME_RETRY_PAUSE)
                self._outcome_ready.set()
            else:
                self._outcomes.recovered()

    async def _flush_outcomes(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        try:
            async with self.database.transaction() as connection:
                await write_outcomes(
                    connection, batch, circuit=self.circuit, lock=not self.database.is_sqlite
                )
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
