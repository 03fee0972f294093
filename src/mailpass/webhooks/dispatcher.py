"""The dispatcher: POSTs the outbox's deliveries to their endpoints, signed, at least once.

Each claim leases its deliveries (``claim_token``, ``lease_expires_at``): a dispatcher killed
mid-delivery leaves them to be claimed again once the lease is over, with the same
``webhook-id``, so the endpoint can tell a repeat. A delivery that gets no 2xx in
``WEBHOOK_TIMEOUT`` is tried again after 5 s, 5 min, 30 min, 2 h, 5 h and then every 10 h, and
given up a day after its event; an endpoint with no delivery working for a day is disabled.

Deliveries flow rather than go in rounds: a place freed by one that ended is taken by the next
claim, and what ended is noted in one transaction every ``FLUSH_AFTER`` seconds (or
``FLUSH_SIZE`` attempts), so a slow endpoint never holds up the deliveries to the others. No
endpoint holds more than ``PER_ENDPOINT`` of a dispatcher's ``CONCURRENCY`` places, so a hung
one (each attempt waiting out the timeout) slows only its own deliveries.

The HTTP client is ``mailpass.webhooks.http``'s (why, there).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import ssl
import time
from collections.abc import Awaitable
from datetime import timedelta

import certifi

from mailpass import __version__
from mailpass.clock import utcnow
from mailpass.config import Settings
from mailpass.providers.secrets import SecretBox
from mailpass.storage.database import Database
from mailpass.storage.unavailable import database_unavailable
from mailpass.webhooks import repository
from mailpass.webhooks.guard import Destinations, UnsafeDestination
from mailpass.webhooks.http import HttpClient, HttpError
from mailpass.webhooks.models import Delivery, DeliveryState
from mailpass.webhooks.payloads import webhook_body
from mailpass.webhooks.repository import Attempt, Claimed
from mailpass.webhooks.signing import sign

__all__ = ["GIVE_UP_AFTER", "RETRY_DELAYS", "WebhookDispatcher"]

log = logging.getLogger("mailpass.webhooks")

RETRY_DELAYS = (5, 300, 1800, 7200, 18000, 36000)  # seconds after each failed attempt
GIVE_UP_AFTER = timedelta(hours=24)  # after its event: then failed
DISABLE_AFTER = timedelta(hours=24)  # of an endpoint failing every delivery: then disabled
CONCURRENCY = 256  # deliveries in flight at once, per dispatcher
PER_ENDPOINT = 64  # of those, to one endpoint
FLUSH_SIZE = 256  # attempts noted together at most
FLUSH_AFTER = 0.2  # seconds an ended attempt waits at most to be noted
POLL_INTERVAL = 1.0  # seconds between looks at the outbox when nothing was due
UNAVAILABLE_PAUSE = 1.0  # seconds between tries while the database is away
MAX_ERROR_CHARS = 300


class WebhookDispatcher:
    def __init__(
        self,
        settings: Settings,
        database: Database,
        secrets_box: SecretBox,
        *,
        concurrency: int = CONCURRENCY,
        per_endpoint: int = PER_ENDPOINT,
    ) -> None:
        self.database = database
        self.secrets = secrets_box
        self.concurrency = concurrency
        self.per_endpoint = min(per_endpoint, concurrency)
        # An endpoint at its share is looked for again once this much of it is free: claims
        # of a few deliveries each, not one claim for every delivery that ends.
        self._batch = max(1, self.per_endpoint // 2)
        self._roomy = self.per_endpoint - self._batch  # held at most: the endpoint has room
        self._crowded: set[int] = set()  # endpoints left out of the last look for want of room
        # A claim outlives any attempt (the endpoint's timeout, thrice, and a margin): a
        # dispatcher killed mid-delivery leaves its claims to others once this is over.
        self.lease = timedelta(seconds=3 * settings.webhook_timeout + 5)
        self.timeout = settings.webhook_timeout
        self._ca_file = settings.https_ca_file
        self._http: HttpClient | None = None
        self._stopping = asyncio.Event()
        self._secrets: dict[str, str] = {}
        self._destinations = Destinations(allow_private=settings.webhooks_allow_private)
        self._flying: set[asyncio.Task[Attempt]] = set()
        self._held: dict[int, int] = {}  # endpoint id: deliveries in flight to it
        self._ended: list[Attempt] = []  # attempts over, not yet noted
        self._first_ended_at = 0.0
        self._next_look = 0.0  # when to look at the outbox again (after finding nothing due)
        self._progress = asyncio.Event()  # an attempt ended, or the dispatcher is to stop

    def stop(self) -> None:
        self._stopping.set()
        self._progress.set()

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def run(self, *, until_idle: bool = False) -> None:
        """Deliver what is due until stopped (``until_idle``: until nothing is due). Its owner
        calls ``close`` once it is done with it. Stopping lets the attempts in flight end
        (within the timeout) and notes them."""
        looked_in_vain = False  # the last look at the outbox found nothing due
        while True:
            self._progress.clear()
            stopping = self._stopping.is_set()
            free = self.concurrency - len(self._flying)
            room = not stopping and free >= max(1, self.concurrency // 4)
            look = room and time.monotonic() >= self._next_look
            note = bool(self._ended) and (
                len(self._ended) >= FLUSH_SIZE
                or not self._flying
                or time.monotonic() >= self._first_ended_at + FLUSH_AFTER
            )
            if look or note:
                if look:
                    # Short of what there was room for, all that was due is taken: look again
                    # in a while, or once an endpoint left out for want of room has some
                    # again (``_ended_one``).
                    self._next_look = time.monotonic() + POLL_INTERVAL
                exchanged = await self._guarded(self._exchange(free if look else 0))
                if exchanged is None and stopping:
                    # The database is away: what ended unnoted is delivered again once its
                    # claim is over, rather than this process waiting for the database.
                    log.warning("stopping with %d webhook attempts not noted", len(self._ended))
                    return
                claimed = exchanged or 0
                if look:
                    looked_in_vain = not claimed
                    if claimed == free:  # there may be more at once
                        self._next_look = 0.0
                continue
            if not self._flying and not self._ended:
                if stopping or (until_idle and looked_in_vain):
                    return
                if until_idle:  # nothing in flight: one more look decides
                    self._next_look = 0.0
                    continue
            # Wait for an attempt to end, for the ended ones to be due for noting, or for
            # the next look at the outbox, whichever comes first.
            deadlines = [self._next_look] if room else []
            if self._ended:
                deadlines.append(self._first_ended_at + FLUSH_AFTER)
            timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), timeout)

    async def _guarded(self, work: Awaitable[int]) -> int | None:
        """``work``'s count; None (after a pause) when the database failed it."""
        try:
            return await work
        except Exception as exc:
            reason = database_unavailable(exc)
            if reason is None:
                log.exception("the webhook dispatcher failed to reach the outbox")
            else:
                log.warning("the database is unavailable (%s): webhooks wait", reason)
            await asyncio.sleep(UNAVAILABLE_PAUSE)
            return None

    async def _exchange(self, free: int) -> int:
        """In one transaction, note the attempts that ended (and what they say of their
        endpoints) and claim up to ``free`` due deliveries; start those, and say how many."""
        attempts = self._ended[:FLUSH_SIZE]
        now = utcnow()
        async with self.database.transaction() as connection:
            if attempts:
                await repository.finish_many(connection, attempts)
                worked: dict[int, bool] = {}
                failing: set[int] = set()
                for attempt in attempts:
                    endpoint = attempt.delivery.endpoint_id
                    worked[endpoint] = worked.get(endpoint, False) or attempt.ok
                    if attempt.endpoint_failing:
                        failing.add(endpoint)
                for endpoint, ok in sorted(worked.items()):
                    if ok and endpoint not in failing:
                        continue  # it was working, and still is: nothing to note
                    await repository.note_endpoint(
                        connection, endpoint, worked=ok, now=now, disable_after=DISABLE_AFTER
                    )
            seen = dict(self._held)  # the claim's view: attempts may end meanwhile
            claimed = (
                await repository.claim_due(
                    connection,
                    limit=free,
                    held=seen,
                    per_endpoint=self.per_endpoint,
                    min_room=self._batch,
                    now=now,
                    lease=self.lease,
                    token=secrets.token_hex(16),
                )
                if free
                else []
            )
        del self._ended[: len(attempts)]
        if self._ended:
            self._first_ended_at = time.monotonic() - FLUSH_AFTER
        for one in claimed:
            endpoint = one.delivery.endpoint_id
            self._held[endpoint] = self._held.get(endpoint, 0) + 1
            seen[endpoint] = seen.get(endpoint, 0) + 1
            task = asyncio.create_task(self._deliver(one))
            self._flying.add(task)
            task.add_done_callback(self._ended_one)
        # Endpoints the claim left out or stopped at for want of room may have more due: they
        # are looked for again as soon as they have room (here, or as attempts end).
        self._crowded.update(e for e, count in seen.items() if count > self._roomy)
        for endpoint in [e for e in self._crowded if self._held.get(e, 0) <= self._roomy]:
            self._crowded.discard(endpoint)
            self._next_look = 0.0
        return len(claimed)

    def _ended_one(self, task: asyncio.Task[Attempt]) -> None:
        self._flying.discard(task)
        if task.cancelled():
            return
        attempt = task.result()
        endpoint = attempt.delivery.endpoint_id
        held = self._held[endpoint] = self._held[endpoint] - 1
        if held <= self._roomy and endpoint in self._crowded:
            self._crowded.discard(endpoint)
            self._next_look = 0.0
        if not held:
            del self._held[endpoint]
        if not self._ended:
            self._first_ended_at = time.monotonic()
        self._ended.append(attempt)
        self._progress.set()

    def _client(self) -> HttpClient:
        if self._http is None:
            context = ssl.create_default_context(cafile=certifi.where())
            if self._ca_file is not None:
                context.load_verify_locations(cafile=str(self._ca_file))
            self._http = HttpClient(context, self.timeout, f"MailPass-Webhooks/{__version__}")
        return self._http

    def _secret(self, encrypted: str) -> str:
        plain = self._secrets.get(encrypted)
        if plain is None:
            plain = self.secrets.decrypt(encrypted)
            self._secrets[encrypted] = plain
        return plain

    async def _deliver(self, claimed: Claimed) -> Attempt:
        delivery, url = claimed.delivery, claimed.url
        body = webhook_body(delivery.payload, claimed.message)
        try:
            ok, status, error = await self._post(
                delivery, url, self._secret(claimed.secret_encrypted), body
            )
        except Exception as exc:  # a bug of ours must not lose the attempt: it is retried
            log.exception("webhook %s to %s", delivery.webhook_id, url)
            ok, status, error = False, None, f"{type(exc).__name__}"
        now = utcnow()
        if ok:
            state, next_at = DeliveryState.DELIVERED, None
        elif now >= delivery.created_at + GIVE_UP_AFTER:
            state, next_at = DeliveryState.FAILED, None
        else:
            delay = RETRY_DELAYS[min(delivery.attempts, len(RETRY_DELAYS) - 1)]
            state, next_at = DeliveryState.PENDING, now + timedelta(seconds=delay)
        if not ok:
            log.info("webhook %s to %s: %s", delivery.webhook_id, url, error)
        failing = claimed.endpoint_failing
        return Attempt(delivery, claimed.token, failing, ok, state, status, error, next_at, now)

    async def _post(
        self, delivery: Delivery, url: str, secret: str, body: bytes
    ) -> tuple[bool, int | None, str | None]:
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "webhook-id": delivery.webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret, delivery.webhook_id, timestamp, body),
        }
        try:
            destination = await self._destinations.resolve(url)
            answer = await self._client().post(url, body, headers, address=destination.address)
        except UnsafeDestination as exc:
            return False, None, str(exc)
        except TimeoutError:
            return False, None, f"no answer within {self.timeout:g} s"
        except HttpError as exc:
            return False, None, str(exc)[:MAX_ERROR_CHARS]
        if 200 <= answer.status < 300:
            return True, answer.status, None
        excerpt = answer.body[:200].decode("utf-8", "replace").strip()
        return False, answer.status, f"HTTP {answer.status} {excerpt}"[:MAX_ERROR_CHARS]
