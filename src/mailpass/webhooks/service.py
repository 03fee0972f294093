"""What the API asks of outbound webhooks: an account's endpoints (each secret shown once),
their recent deliveries, and the dispatcher a worker process runs."""

from __future__ import annotations

from mailpass.accounts.keys import ApiKey
from mailpass.accounts.repository import find_key_by_hash
from mailpass.clock import isoformat, utcnow
from mailpass.config import Settings
from mailpass.providers.secrets import SecretBox
from mailpass.storage.database import Database
from mailpass.webhooks import repository
from mailpass.webhooks.dispatcher import WebhookDispatcher
from mailpass.webhooks.models import Delivery, Endpoint
from mailpass.webhooks.payloads import TYPE_PREFIX
from mailpass.webhooks.signing import new_secret

__all__ = ["MAX_ENDPOINTS", "TooManyEndpoints", "WebhookService"]

MAX_ENDPOINTS = 10  # per account


class TooManyEndpoints(Exception):
    pass


class WebhookService:
    def __init__(self, settings: Settings, database: Database, secrets: SecretBox) -> None:
        self.settings = settings
        self.database = database
        self.secrets = secrets

    async def find_key(self, key_hash: str) -> tuple[ApiKey | None, None]:
        return await find_key_by_hash(self.database, key_hash), None

    async def create(self, user_id: int, url: str, event_types: list[str]) -> tuple[Endpoint, str]:
        """A new endpoint and its signing secret (``whsec_…``), which is not shown again."""
        secret = new_secret()
        async with self.database.transaction() as connection:
            if len(await repository.list_endpoints(connection, user_id)) >= MAX_ENDPOINTS:
                raise TooManyEndpoints(f"an account has at most {MAX_ENDPOINTS} endpoints")
            endpoint = await repository.insert_endpoint(
                connection,
                user_id=user_id,
                url=url,
                secret_encrypted=self.secrets.encrypt(secret),
                event_types=event_types,
                now=utcnow(),
            )
        return endpoint, secret

    async def endpoints(self, user_id: int) -> list[Endpoint]:
        async with self.database.read() as connection:
            return await repository.list_endpoints(connection, user_id)

    async def delete(self, user_id: int, endpoint_id: int) -> bool:
        async with self.database.transaction() as connection:
            return await repository.delete_endpoint(connection, user_id, endpoint_id)

    async def deliveries(self, user_id: int, endpoint_id: int, limit: int) -> list[Delivery]:
        async with self.database.read() as connection:
            return await repository.recent_deliveries(connection, user_id, endpoint_id, limit)

    async def send_test(self, user_id: int, endpoint_id: int) -> bool:
        """Queue a test event (``email.test``) for one endpoint; whether it is the account's."""
        now = utcnow()
        payload = {
            "type": TYPE_PREFIX + repository.TEST_EVENT,
            "created_at": isoformat(now),
            "data": {"message": "A test event from MailPass: this endpoint is reached."},
        }
        async with self.database.transaction() as connection:
            return await repository.enqueue_test(connection, user_id, endpoint_id, payload, now)

    async def enable(self, user_id: int, endpoint_id: int) -> bool:
        async with self.database.transaction() as connection:
            return await repository.enable_endpoint(connection, user_id, endpoint_id, utcnow())

    def dispatcher(self) -> WebhookDispatcher:
        return WebhookDispatcher(self.settings, self.database, self.secrets)
