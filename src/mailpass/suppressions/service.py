"""What the API (and, later, bounce and complaint intake) asks of the suppression list. Every
address goes in and is looked up lower-cased."""

from __future__ import annotations

from collections.abc import Collection

from mailpass.accounts.keys import ApiKey
from mailpass.accounts.repository import find_key_by_hash
from mailpass.clock import utcnow
from mailpass.storage.database import Database
from mailpass.suppressions import repository
from mailpass.suppressions.models import Suppression, SuppressionReason

__all__ = ["SuppressionService"]


class SuppressionService:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def find_key(self, key_hash: str) -> tuple[ApiKey | None, None]:
        """The key with ``key_hash`` (for ``api.auth.authenticate``; nothing is read with
        it)."""
        return await find_key_by_hash(self.database, key_hash), None

    async def add(
        self,
        user_id: int,
        email: str,
        reason: SuppressionReason = SuppressionReason.MANUAL,
        message_pk: int | None = None,
    ) -> bool:
        """Put ``email`` on the account's list; False if it was there already."""
        async with self.database.transaction() as connection:
            return await repository.add(
                connection, user_id, email.lower(), reason, utcnow(), message_pk
            )

    async def remove(self, user_id: int, email: str) -> bool:
        """Take ``email`` off the account's list; whether it was on it."""
        async with self.database.transaction() as connection:
            return await repository.remove(connection, user_id, email.lower())

    async def page(
        self, user_id: int, *, search: str | None, limit: int, after: int | None
    ) -> tuple[list[Suppression], int | None]:
        """A page of the account's list, newest first, and the next page's cursor."""
        async with self.database.read() as connection:
            return await repository.page(
                connection, user_id, search=search, limit=limit, after=after
            )

    async def among(self, user_id: int, emails: Collection[str]) -> dict[str, SuppressionReason]:
        """Those of ``emails`` (lower-cased) on the account's list, with why."""
        async with self.database.read() as connection:
            return await repository.suppressed_among(connection, user_id, emails)
