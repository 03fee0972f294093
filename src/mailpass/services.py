"""What a running MailPass process holds for its whole life, built once at start-up."""

from __future__ import annotations

from dataclasses import dataclass

from mailpass.accounts.key_rate import KeyRate
from mailpass.accounts.service import KeyService
from mailpass.accounts.throttle import AuthThrottle
from mailpass.accounts.usage import KeyUsage
from mailpass.config import Settings, load_instance_secret
from mailpass.core.addresses import allow_single_label_domains
from mailpass.core.dns import Resolver
from mailpass.delivery.wakeup import QueueWakeup
from mailpass.delivery.worker import QueueWorker
from mailpass.domains.service import DomainService
from mailpass.intake.service import IntakeService
from mailpass.intake.verp import ReturnPaths
from mailpass.messages.service import MailService
from mailpass.monitoring.service import MetricsService
from mailpass.providers.registry import TransportRegistry
from mailpass.providers.secrets import SecretBox
from mailpass.providers.service import ProviderService
from mailpass.relay.service import RelayService
from mailpass.storage.database import Database
from mailpass.suppressions.service import SuppressionService
from mailpass.tracking.sending import MessageTracker
from mailpass.tracking.service import TrackingService
from mailpass.tracking.tokens import TokenSigner
from mailpass.webhooks.service import WebhookService

__all__ = ["Services"]


@dataclass
class Services:
    settings: Settings
    database: Database
    secrets: SecretBox
    transports: TransportRegistry
    wakeup: QueueWakeup
    mail: MailService
    key_usage: KeyUsage
    suppressions: SuppressionService
    tracking: TrackingService
    intake: IntakeService
    webhooks: WebhookService
    providers: ProviderService
    domains: DomainService
    metrics: MetricsService
    keys: KeyService
    auth_throttle: AuthThrottle
    key_rate: KeyRate

    @classmethod
    def build(cls, settings: Settings) -> Services:
        allow_single_label_domains(settings.allow_single_label_domains)
        database = Database(settings.resolved_database_url)
        secrets = SecretBox(load_instance_secret(settings))
        resolver = Resolver(settings.dns_resolver, settings.dns_timeout)
        domains = DomainService(settings, database, secrets, resolver)
        transports = TransportRegistry(settings, secrets, resolver=resolver, signers=domains.signer)
        wakeup = QueueWakeup(database)
        signer = TokenSigner(load_instance_secret(settings))
        return_paths = ReturnPaths(load_instance_secret(settings), settings.bounce_domain)
        return cls(
            settings=settings,
            database=database,
            secrets=secrets,
            transports=transports,
            wakeup=wakeup,
            mail=MailService(
                settings,
                database,
                transports,
                wakeup,
                MessageTracker(settings, signer),
                return_paths,
            ),
            key_usage=KeyUsage(database),
            suppressions=SuppressionService(database),
            tracking=TrackingService(settings, database, signer),
            intake=IntakeService(settings, database, secrets, return_paths),
            webhooks=WebhookService(settings, database, secrets),
            providers=ProviderService(settings, database, secrets),
            domains=domains,
            metrics=MetricsService(settings, database),
            keys=KeyService(database),
            auth_throttle=AuthThrottle(database, settings.auth_failure_limit),
            key_rate=KeyRate(settings.key_rate_limit),
        )

    def worker(self, concurrency: int | None = None) -> QueueWorker:
        return QueueWorker(
            settings=self.settings,
            database=self.database,
            transports=self.transports,
            wakeup=self.wakeup,
            concurrency=concurrency,
            return_paths=self.intake.return_paths,
        )

    def relay(self) -> RelayService:
        """The SMTP relay's decisions, for a process that listens for submissions."""
        return RelayService(
            self.settings,
            self.mail,
            self.auth_throttle,
            self.key_rate,
            self.key_usage,
            self.suppressions,
        )

    async def close(self) -> None:
        await self.mail.late_outcomes.close()
        await self.wakeup.close()
        await self.transports.close()
        await self.tracking.close()
        await self.intake.close()
        await self.database.dispose()
