"""Account management: what the command line and the dashboard do with users and keys."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from mailpass.accounts import repository
from mailpass.accounts.keys import (
    ALL_PERMISSIONS,
    ApiKey,
    display_prefix,
    generate_key,
    hash_key,
    parse_permissions,
)
from mailpass.accounts.models import User
from mailpass.accounts.passwords import hash_password
from mailpass.clock import utcnow
from mailpass.core.addresses import AddressError, parse_mailbox
from mailpass.storage.database import Connection, Database

__all__ = [
    "AccountError",
    "CreatedKey",
    "KeyService",
    "create_account_key",
    "create_key",
    "create_user",
    "find_user",
    "list_keys",
    "list_users",
    "require_user",
    "revoke_key",
    "revoke_own_key",
    "set_password",
]


class AccountError(Exception):
    """A management request that cannot be carried out; the message says why, in one line."""


@dataclass(frozen=True, slots=True)
class CreatedKey:
    id: int
    key: str  # the only moment the whole key exists outside its owner's hands


def normalize_email(raw: str) -> str:
    try:
        return parse_mailbox(raw).email
    except AddressError as exc:
        raise AccountError(str(exc)) from None


async def create_user(database: Database, email: str, password: str | None = None) -> User:
    address = normalize_email(email)
    password_hash = hash_password(password) if password is not None else None
    try:
        async with database.transaction() as connection:
            if await repository.find_user_by_email(connection, address):
                raise AccountError(f"a user {address} already exists")
            return await repository.create_user(connection, address, utcnow(), password_hash)
    except IntegrityError:
        raise AccountError(f"a user {address} already exists") from None


async def set_password(database: Database, email: str, password: str) -> None:
    password_hash = hash_password(password)
    async with database.transaction() as connection:
        user = await _user(connection, email)
        await repository.set_password_hash(connection, user.id, password_hash)


async def require_user(database: Database, email: str) -> User:
    async with database.read() as connection:
        return await _user(connection, email)


async def _user(connection: Connection, email: str) -> User:
    user = await repository.find_user_by_email(connection, email.strip())
    if user is None:
        raise AccountError(f"no user {email.strip()}; create one with `mailpass users create`")
    return user


async def create_key(
    database: Database,
    user: User,
    *,
    name: str = "default",
    permissions: list[str] | None = None,
    test: bool = False,
) -> CreatedKey:
    return await create_account_key(
        database, user.id, name=name, permissions=permissions or None, test=test
    )


async def create_account_key(
    database: Database,
    user_id: int,
    *,
    name: str = "default",
    permissions: Collection[str] | None = None,
    test: bool = False,
) -> CreatedKey:
    """A new key of the account ``user_id``; every permission when ``permissions`` is None."""
    try:
        chosen = parse_permissions(ALL_PERMISSIONS if permissions is None else permissions)
    except ValueError as exc:
        raise AccountError(str(exc)) from None
    if not chosen:
        raise AccountError("a key needs at least one permission")
    if not name.strip() or len(name) > 100:
        raise AccountError("a key name has 1 to 100 characters")
    key = generate_key(test=test)
    async with database.transaction() as connection:
        key_id = await repository.insert_api_key(
            connection,
            user_id=user_id,
            name=name.strip(),
            prefix=display_prefix(key),
            key_hash=hash_key(key),
            permissions=chosen,
            is_test=test,
            now=utcnow(),
        )
    return CreatedKey(id=key_id, key=key)


async def revoke_key(database: Database, key_id: int) -> None:
    async with database.transaction() as connection:
        if not await repository.revoke_key(connection, key_id, utcnow()):
            raise AccountError(f"no active key with id {key_id}")


async def revoke_own_key(database: Database, user_id: int, key_id: int) -> None:
    """Revoke one of the account's keys; another account's key is as unknown as a missing one."""
    async with database.transaction() as connection:
        if not await repository.revoke_key_of_user(connection, user_id, key_id, utcnow()):
            raise AccountError(f"no active key with id {key_id}")


async def find_user(database: Database, email: str) -> User | None:
    """The account with this e-mail (any case), if there is one."""
    async with database.read() as connection:
        return await repository.find_user_by_email(connection, email)


async def list_users(database: Database) -> list[User]:
    async with database.read() as connection:
        return await repository.list_users(connection)


async def list_keys(database: Database, user_id: int | None = None) -> list[ApiKey]:
    """Every API key, or one account's, revoked ones included, oldest first."""
    async with database.read() as connection:
        return await repository.list_keys(connection, user_id)


class KeyService:
    """What the management API does with an account's keys."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def find_key(self, key_hash: str) -> tuple[ApiKey | None, None]:
        return await repository.find_key_by_hash(self.database, key_hash), None

    async def keys(self, user_id: int) -> list[ApiKey]:
        return await list_keys(self.database, user_id)

    async def key(self, user_id: int, key_id: int) -> ApiKey | None:
        return next((key for key in await self.keys(user_id) if key.id == key_id), None)

    async def create(
        self, user_id: int, *, name: str, permissions: Collection[str], test: bool
    ) -> tuple[ApiKey, str]:
        """The new key as listed, and the key itself, which exists nowhere else."""
        created = await create_account_key(
            self.database, user_id, name=name, permissions=permissions, test=test
        )
        key = await self.key(user_id, created.id)
        assert key is not None  # keys are revoked, never deleted
        return key, created.key

    async def revoke(self, user_id: int, key_id: int) -> ApiKey | None:
        """The key once revoked; None when the account has no active key ``key_id``."""
        try:
            await revoke_own_key(self.database, user_id, key_id)
        except AccountError:
            return None
        return await self.key(user_id, key_id)
