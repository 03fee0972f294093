"""What a running MailPass process holds for its whole life, built once at start-up."""

from __future__ import annotations

import gc
from dataclasses import dataclass

from mailpass.accounts.usage import KeyUsage
from mailpass.config import Settings, load_instance_secret
from mailpass.delivery.wakeup import QueueWakeup
from mailpass.delivery.worker import QueueWorker
from mailpass.messages.service import MailService
from mailpass.providers.registry import TransportRegistry
from mailpass.providers.secrets import SecretBox
from mailpass.storage.database import Database
from mailpass.tracking.sending import MessageTracker
from mailpass.tracking.service import TrackingService
from mailpass.tracking.tokens import TokenSigner

__all__ = ["Services", "started"]


@dataclass
class Services:
    settings: Settings
    database: Database
    secrets: SecretBox
    transports: TransportRegistry
    wakeup: QueueWakeup
    mail: MailService
    key_usage: KeyUsage
    tracking: TrackingService

    @classmethod
    def build(cls, settings: Settings) -> Services:
        database = Database(settings.resolved_database_url)
        secrets = SecretBox(load_instance_secret(settings))
        transports = TransportRegistry(settings, secrets)
        wakeup = QueueWakeup(database)
        signer = TokenSigner(load_instance_secret(settings))
        return cls(
            settings=settings,
            database=database,
            secrets=secrets,
            transports=transports,
            wakeup=wakeup,
            mail=MailService(
                settings, database, transports, wakeup, MessageTracker(settings, signer)
            ),
            key_usage=KeyUsage(database),
            tracking=TrackingService(settings, database, signer),
        )

    def worker(self, concurrency: int | None = None) -> QueueWorker:
        return QueueWorker(
            settings=self.settings,
            database=self.database,
            transports=self.transports,
            wakeup=self.wakeup,
            concurrency=concurrency,
        )

    async def close(self) -> None:
        await self.wakeup.close()
        await self.transports.close()
        await self.tracking.close()
        await self.database.dispose()


YOUNG_COLLECTION_THRESHOLD = 10_000  # new objects between collections of the youngest


def started() -> None:
    """Call once a process has built what it holds for its whole life (its modules, app and
    services): the garbage collector stops tracing those objects, and runs less often.

    They never become garbage, yet every full collection walked all of them: ~120,000 objects,
    135 ms here, during which the process answered nothing. Under load a full collection
    came every few seconds and made the slowest requests (p99, max) of every route. After
    ``gc.freeze()`` a full collection walks only what was allocated since.

    Then the youngest generation is collected after ``YOUNG_COLLECTION_THRESHOLD`` new objects
    instead of Python's 700. A /send-batch request holds a few thousand objects while it
    works (its parsed messages, their rows), none of them in a cycle, so at 700 the collector
    ran several times a request to walk them and free nothing: 3-6 µs of every queued
    message's 40-50 µs in the API (``gc.callbacks`` timing the collections), and 3 % of the
    instructions the API process ran for it. Memory freed by reference counting, nearly all
    of it, is freed as before; only garbage in cycles waits longer.
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, older, oldest)
