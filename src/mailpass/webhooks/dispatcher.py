"""The dispatcher: POSTs the outbox's deliveries to their endpoints, signed, at least once.

Each claim leases its deliveries (``claim_token``, ``lease_expires_at``): a dispatcher killed
mid-delivery leaves them to be claimed again once the lease is over, with the same
``webhook-id``, so the endpoint can tell a repeat. A delivery that gets no 2xx in
``WEBHOOK_TIMEOUT`` is tried again after 5 s, 5 min, 30 min, 2 h, 5 h and then every 10 h, and
given up a day after its event; an endpoint with no delivery working for a day is disabled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import ssl
import time
from datetime import timedelta
from urllib.parse import urlsplit

import certifi
import httpx

from mailpass import __version__
from mailpass.clock import utcnow
from mailpass.config import Settings
from mailpass.providers.secrets import SecretBox
from mailpass.storage.database import Database
from mailpass.storage.unavailable import database_unavailable
from mailpass.webhooks import repository
from mailpass.webhooks.guard import Destinations, UnsafeDestination
from mailpass.webhooks.models import Delivery, DeliveryState
from mailpass.webhooks.payloads import webhook_body
from mailpass.webhooks.repository import Attempt, Claimed
from mailpass.webhooks.signing import sign

__all__ = ["GIVE_UP_AFTER", "RETRY_DELAYS", "WebhookDispatcher"]

log = logging.getLogger("mailpass.webhooks")

RETRY_DELAYS = (5, 300, 1800, 7200, 18000, 36000)  # seconds after each failed attempt
GIVE_UP_AFTER = timedelta(hours=24)  # after its event: then failed
DISABLE_AFTER = timedelta(hours=24)  # of an endpoint failing every delivery: then disabled
CLAIM_SIZE = 64
POLL_INTERVAL = 1.0  # seconds between looks at the outbox when nothing was due
MAX_ERROR_CHARS = 300


class WebhookDispatcher:
    def __init__(
        self,
        settings: Settings,
        database: Database,
        secrets_box: SecretBox,
        *,
        concurrency: int = 8,
    ) -> None:
        self.database = database
        self.secrets = secrets_box
        self.allow_private = settings.webhooks_allow_private
        # A claim outlives any attempt (the endpoint's timeout, thrice, and a margin): a
        # dispatcher killed mid-delivery leaves its claims to others once this is over.
        self.lease = timedelta(seconds=3 * settings.webhook_timeout + 5)
        context = ssl.create_default_context(cafile=certifi.where())
        if settings.https_ca_file is not None:
            context.load_verify_locations(cafile=str(settings.https_ca_file))
        self._http = httpx.AsyncClient(
            verify=context,
            timeout=settings.webhook_timeout,
            follow_redirects=False,
            limits=httpx.Limits(max_connections=concurrency),
        )
        self._places = asyncio.Semaphore(concurrency)
        self._stopping = asyncio.Event()
        self._secrets: dict[str, str] = {}
        self._destinations = Destinations(allow_private=self.allow_private)

    def stop(self) -> None:
        self._stopping.set()

    async def close(self) -> None:
        await self._http.aclose()

    async def run(self, *, until_idle: bool = False) -> None:
        """Deliver what is due until stopped (``until_idle``: until nothing is due). Its owner
        calls ``close`` once it is done with it."""
        while not self._stopping.is_set():
            try:
                worked = await self.deliver_due()
            except Exception as exc:
                reason = database_unavailable(exc)
                if reason is None:
                    log.exception("the webhook dispatcher failed a round")
                else:
                    log.warning("the database is unavailable (%s): webhooks wait", reason)
                worked = 0
            if worked:
                continue
            if until_idle:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), POLL_INTERVAL)

    async def deliver_due(self) -> int:
        """Claim what is due, deliver it, and note the results together in one transaction;
        how many were claimed."""
        token = secrets.token_hex(16)
        now = utcnow()
        async with self.database.transaction() as connection:
            claimed = await repository.claim_due(
                connection, limit=CLAIM_SIZE, now=now, lease=self.lease, token=token
            )
        if not claimed:
            return 0
        results = await asyncio.gather(*(self._deliver(one) for one in claimed))
        async with self.database.transaction() as connection:
            await repository.finish_many(connection, results, token)
            worked: dict[int, bool] = {}
            for result in results:
                endpoint = result.delivery.endpoint_id
                worked[endpoint] = worked.get(endpoint, False) or result.ok
            for endpoint, ok in sorted(worked.items()):
                await repository.note_endpoint(
                    connection, endpoint, worked=ok, now=now, disable_after=DISABLE_AFTER
                )
        return len(claimed)

    def _secret(self, encrypted: str) -> str:
        plain = self._secrets.get(encrypted)
        if plain is None:
            plain = self.secrets.decrypt(encrypted)
            self._secrets[encrypted] = plain
        return plain

    async def _deliver(self, claimed: Claimed) -> Attempt:
        delivery, url = claimed.delivery, claimed.url
        body = webhook_body(delivery.payload, claimed.message)
        async with self._places:
            ok, status, error = await self._post(
                delivery, url, self._secret(claimed.secret_encrypted), body
            )
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
        return Attempt(delivery, ok, state, status, error, next_at, now)

    async def _post(
        self, delivery: Delivery, url: str, secret: str, body: bytes
    ) -> tuple[bool, int | None, str | None]:
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "user-agent": f"MailPass-Webhooks/{__version__}",
            "webhook-id": delivery.webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret, delivery.webhook_id, timestamp, body),
        }
        try:
            destination = await self._destinations.resolve(url)
            response = await self._http.post(
                destination.url,
                content=body,
                headers={**headers, "host": urlsplit(url).netloc},
                extensions={"sni_hostname": destination.host},
            )
        except UnsafeDestination as exc:
            return False, None, str(exc)
        except httpx.HTTPError as exc:
            return False, None, f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
        if 200 <= response.status_code < 300:
            return True, response.status_code, None
        excerpt = response.text[:200].strip()
        return (
            False,
            response.status_code,
            f"HTTP {response.status_code} {excerpt}"[:MAX_ERROR_CHARS],
        )
