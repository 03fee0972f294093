"""Rendering ``/metrics``: the database's snapshot and the processes' own measures, in the
Prometheus text format (``prometheus_client.CONTENT_TYPE_LATEST``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from mailpass.clock import utcnow
from mailpass.config import Settings
from mailpass.delivery.workers import stale_after
from mailpass.monitoring.repository import Snapshot, read_snapshot
from mailpass.runtime.metrics import process_registry
from mailpass.storage.database import Database

__all__ = ["CONTENT_TYPE", "MetricsService"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class MetricsService:
    def __init__(self, settings: Settings, database: Database) -> None:
        self.settings = settings
        self.database = database

    async def render(self) -> bytes:
        """The whole exposition: the database's gauges, then the processes' measures."""
        now = utcnow()
        async with self.database.read() as connection:
            snapshot = await read_snapshot(
                connection, now, stale_after(self.settings.worker_heartbeat_interval)
            )
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Database(snapshot, now))
        return generate_latest(registry) + generate_latest(process_registry())


def _age(moment: datetime | None, now: datetime) -> float:
    return max(0.0, (now - moment).total_seconds()) if moment is not None else 0.0


class _Database(Collector):
    def __init__(self, snapshot: Snapshot, now: datetime) -> None:
        self.snapshot = snapshot
        self.now = now

    def collect(self) -> Iterator[Metric]:
        snapshot, now = self.snapshot, self.now
        counted = GaugeMetricFamily(
            "mailpass_messages",
            "Messages recorded, by status and provider id (empty: none, or deleted).",
            labels=["status", "provider"],
        )
        for (status, provider_id), count in sorted(
            snapshot.messages.items(), key=lambda item: (item[0][0], item[0][1] or 0)
        ):
            counted.add_metric([status, "" if provider_id is None else str(provider_id)], count)
        yield counted
        yield GaugeMetricFamily(
            "mailpass_queue_due",
            "Queued messages due now (waiting for a worker).",
            value=snapshot.queue_due,
        )
        yield GaugeMetricFamily(
            "mailpass_queue_oldest_due_seconds",
            "How long the longest-waiting due message has been due (0: none is).",
            value=_age(snapshot.oldest_due, now),
        )
        yield GaugeMetricFamily(
            "mailpass_webhook_deliveries_pending",
            "Webhook deliveries not yet made, due now or later (retries).",
            value=snapshot.webhooks_pending,
        )
        yield GaugeMetricFamily(
            "mailpass_webhook_deliveries_due",
            "Webhook deliveries due now.",
            value=snapshot.webhooks_due,
        )
        yield GaugeMetricFamily(
            "mailpass_webhook_oldest_due_seconds",
            "How long the longest-waiting due webhook delivery has been due (0: none is).",
            value=_age(snapshot.oldest_webhook_due, now),
        )
        info = GaugeMetricFamily(
            "mailpass_provider_info",
            "1 for each provider: its id, name and kind.",
            labels=["provider", "name", "kind"],
        )
        down = GaugeMetricFamily(
            "mailpass_provider_down",
            "1 while a provider is marked down (its mail waits), else 0.",
            labels=["provider"],
        )
        for provider in snapshot.providers:
            info.add_metric([str(provider.id), provider.name, provider.kind], 1)
            down.add_metric([str(provider.id)], 1 if provider.down else 0)
        yield info
        yield down
        yield GaugeMetricFamily(
            "mailpass_workers_live",
            "Queue worker processes whose heartbeat is recent.",
            value=snapshot.live_workers,
        )
