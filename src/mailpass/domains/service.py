"""What the API, the command line and the dashboard do with sending domains, and the DKIM
signer direct delivery asks for."""

from __future__ import annotations

import asyncio
import secrets
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from mailpass.accounts.keys import ApiKey
from mailpass.accounts.repository import find_key_by_hash
from mailpass.clock import utcnow
from mailpass.config import Settings
from mailpass.core.addresses import mail_domain
from mailpass.core.dns import Resolver
from mailpass.domains import repository
from mailpass.domains.dkim import ALGORITHMS, DkimAlgorithm, DkimSigner, generate_key
from mailpass.domains.models import KeyState, SendingDomain
from mailpass.domains.records import (
    RecordCheck,
    RecordStatus,
    check_records,
    records_to_publish,
)
from mailpass.providers.secrets import SecretBox
from mailpass.storage.database import Database

__all__ = ["DomainError", "DomainService", "record_answers"]


class DomainError(Exception):
    """A request about a domain that cannot be carried out; the message says why."""


def new_selector(now: datetime) -> str:
    """``mp`` and the day it was made, and 4 random hex digits: a rotation on the same day
    gets another."""
    return f"mp{now:%Y%m%d}{secrets.token_hex(2)}"


def record_answers(domain: SendingDomain, settings: Settings) -> list[dict[str, Any]]:
    """The records to publish, each with what the last check found of it (``status`` None
    before any check, or for a record made since)."""
    checked = {
        (item["purpose"], item["name"], item["value"]): item for item in domain.check_results or []
    }
    answers = []
    for record in records_to_publish(domain, settings):
        last = checked.get((record.purpose, record.name, record.value), {})
        answers.append(
            {
                **record.as_dict(),
                "status": last.get("status"),
                "found": last.get("found", []),
                "note": last.get("note"),
            }
        )
    return answers


class DomainService:
    def __init__(
        self, settings: Settings, database: Database, secrets: SecretBox, resolver: Resolver
    ) -> None:
        self.settings = settings
        self.database = database
        self.secrets = secrets
        self.resolver = resolver

    async def find_key(self, key_hash: str) -> tuple[ApiKey | None, None]:
        return await find_key_by_hash(self.database, key_hash), None

    async def domains(self, user_id: int) -> list[SendingDomain]:
        async with self.database.read() as connection:
            return await repository.list_domains(connection, user_id)

    async def get(self, user_id: int, domain_id: int) -> SendingDomain | None:
        async with self.database.read() as connection:
            return await repository.find_domain(connection, user_id, domain_id)

    async def by_name(self, user_id: int, name: str) -> SendingDomain | None:
        async with self.database.read() as connection:
            return await repository.find_domain_by_name(connection, user_id, name)

    def _algorithm(self, algorithm: str | None) -> DkimAlgorithm:
        chosen = algorithm or self.settings.dkim_algorithm
        if chosen not in ALGORITHMS:
            raise DomainError(f"algorithm must be one of {', '.join(ALGORITHMS)}, not {chosen!r}")
        return chosen

    async def _new_key(self, algorithm: DkimAlgorithm) -> tuple[str, str]:
        """(encrypted private key, public key); made in a thread (an RSA key takes ~0.1 s)."""
        private_pem, public_key = await asyncio.to_thread(generate_key, algorithm)
        return self.secrets.encrypt(private_pem), public_key

    async def add(self, user_id: int, name: str, algorithm: str | None = None) -> SendingDomain:
        """A new sending domain with its first DKIM key, signing once the domain is verified."""
        try:
            domain_name = mail_domain(name)
        except ValueError as exc:
            raise DomainError(str(exc)) from None
        chosen = self._algorithm(algorithm)
        encrypted, public_key = await self._new_key(chosen)
        now = utcnow()
        try:
            async with self.database.transaction() as connection:
                domain_id = await repository.add_domain(connection, user_id, domain_name, now)
                await repository.add_key(
                    connection,
                    domain_id,
                    selector=new_selector(now),
                    algorithm=chosen,
                    public_key=public_key,
                    private_key_encrypted=encrypted,
                    state=KeyState.ACTIVE,
                    now=now,
                )
        except IntegrityError:
            raise DomainError(f"the domain {domain_name} is already added") from None
        added = await self.get(user_id, domain_id)
        assert added is not None
        return added

    async def verify(
        self, user_id: int, domain_id: int
    ) -> tuple[SendingDomain, list[RecordCheck]] | None:
        """Look the domain's records up; a rotation's new key found in the DNS starts signing
        (the key it replaces is retired). None when the account has no such domain."""
        domain = await self.get(user_id, domain_id)
        if domain is None:
            return None
        checks = await check_records(self.resolver, records_to_publish(domain, self.settings))
        now = utcnow()
        pending = domain.key_in(KeyState.PENDING)
        promote = pending is not None and any(
            check.record.selector == pending.selector and check.status == RecordStatus.VERIFIED
            for check in checks
        )
        required = [check for check in checks if check.record.required]
        if promote:
            # The new key is published: it signs, and it is the DKIM record that counts now.
            required = [
                check
                for check in checks
                if (check.record.purpose != "dkim" and check.record.required)
                or (pending is not None and check.record.selector == pending.selector)
            ]
        if any(check.status == RecordStatus.UNAVAILABLE for check in required):
            verified_at = domain.verified_at  # nothing learnt: as it was
        elif all(check.status == RecordStatus.VERIFIED for check in required):
            verified_at = domain.verified_at or now
        else:
            verified_at = None
        async with self.database.transaction() as connection:
            if promote and pending is not None:
                await repository.promote_key(connection, domain.id, pending.id, now)
            await repository.record_check(
                connection,
                domain.id,
                results=[check.as_dict() for check in checks],
                now=now,
                verified_at=verified_at,
            )
        checked = await self.get(user_id, domain_id)
        assert checked is not None
        return checked, checks

    async def rotate(
        self, user_id: int, domain_id: int, algorithm: str | None = None
    ) -> SendingDomain | None:
        """A new key, pending until its record is found by a check; the old one signs until
        then. None when the account has no such domain."""
        domain = await self.get(user_id, domain_id)
        if domain is None:
            return None
        pending = domain.key_in(KeyState.PENDING)
        if pending is not None:
            raise DomainError(
                f"a rotation is under way: publish {pending.record_name(domain.name)} and "
                f"verify, or remove the key {pending.selector} first"
            )
        active = domain.key_in(KeyState.ACTIVE)
        chosen = self._algorithm(algorithm or (active.algorithm if active else None))
        encrypted, public_key = await self._new_key(chosen)
        now = utcnow()
        async with self.database.transaction() as connection:
            await repository.add_key(
                connection,
                domain.id,
                selector=new_selector(now),
                algorithm=chosen,
                public_key=public_key,
                private_key_encrypted=encrypted,
                state=KeyState.PENDING,
                now=now,
            )
        return await self.get(user_id, domain_id)

    async def remove_key(self, user_id: int, domain_id: int, selector: str) -> bool | None:
        """Remove a pending or retired key; None when the account has no such domain, False
        when it has no such key. The key that signs cannot be removed."""
        domain = await self.get(user_id, domain_id)
        if domain is None:
            return None
        key = next((key for key in domain.keys if key.selector == selector), None)
        if key is None:
            return False
        if key.state == KeyState.ACTIVE:
            raise DomainError(
                f"{selector} is the key mail is signed with: rotate first, and remove it "
                "once the new key signs"
            )
        async with self.database.transaction() as connection:
            return await repository.delete_key(connection, domain.id, selector)

    async def delete(self, user_id: int, domain_id: int) -> bool:
        async with self.database.transaction() as connection:
            return await repository.delete_domain(connection, user_id, domain_id)

    async def signer(self, user_id: int, domain_name: str) -> DkimSigner | None:
        """What mail from ``domain_name`` is signed with: its active key, once the domain is
        verified; None otherwise."""
        domain = await self.by_name(user_id, domain_name)
        if domain is None or not domain.is_verified:
            return None
        key = domain.key_in(KeyState.ACTIVE)
        if key is None:
            return None
        return DkimSigner(
            domain.name,
            key.selector,
            key.algorithm,
            self.secrets.decrypt(key.private_key_encrypted),
        )
