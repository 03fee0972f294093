"""Provider management: what the command line and the dashboard do with SMTP providers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from mailpass.accounts.models import User
from mailpass.clock import utcnow
from mailpass.config import Settings
from mailpass.core.addresses import (
    AddressError,
    HeaderValueError,
    check_header_text,
    parse_mailbox,
)
from mailpass.providers import repository
from mailpass.providers.hooks import HookKeyError, check_hook_key
from mailpass.providers.kinds import ConnectionSettings, resolve_connection
from mailpass.providers.models import Provider, ProviderUsage
from mailpass.providers.registry import endpoint_for
from mailpass.providers.secrets import SecretBox
from mailpass.providers.smtp import probe
from mailpass.storage.database import Database

__all__ = [
    "NewProvider",
    "ProviderError",
    "add_provider",
    "count_waiting",
    "delete_provider",
    "find_provider",
    "list_providers",
    "own_provider",
    "point_at",
    "set_default",
    "set_hook_key",
    "set_tracking",
    "test_provider",
    "update_provider",
    "usage_by_provider",
]


class ProviderError(Exception):
    """A provider request that cannot be carried out; the message says why, in one line."""


@dataclass(frozen=True, slots=True)
class NewProvider:
    name: str
    kind: str
    host: str | None = None
    port: int | None = None
    security: str | None = None
    username: str | None = None
    password: str | None = None
    region: str | None = None
    from_email: str | None = None
    from_name: str | None = None
    hourly_limit: int | None = None
    daily_limit: int | None = None
    make_default: bool = False
    track_opens: bool = False
    track_clicks: bool = False


def _check(new: NewProvider) -> tuple[ConnectionSettings, str | None, str | None]:
    """The provider's server, sender address and sender name, or a one-line ProviderError."""
    if not new.name.strip() or len(new.name) > 100:
        raise ProviderError("a provider name has 1 to 100 characters")
    for label, limit in (("hourly limit", new.hourly_limit), ("daily limit", new.daily_limit)):
        if limit is not None and limit < 1:
            raise ProviderError(f"the {label} must be at least 1 (leave it out for no limit)")
    try:
        from_email = parse_mailbox(new.from_email).email if new.from_email else None
        from_name = check_header_text(new.from_name) if new.from_name else None
    except (AddressError, HeaderValueError) as exc:
        raise ProviderError(str(exc)) from None
    try:
        settings = resolve_connection(
            new.kind,
            host=new.host,
            port=new.port,
            security=new.security,
            username=new.username,
            region=new.region,
        )
    except ValueError as exc:
        raise ProviderError(str(exc)) from None
    return settings, from_email, from_name


async def add_provider(
    database: Database, secrets: SecretBox, user: User, new: NewProvider
) -> Provider:
    settings, from_email, from_name = _check(new)
    try:
        async with database.transaction() as connection:
            return await repository.insert_provider(
                connection,
                user_id=user.id,
                name=new.name.strip(),
                kind=new.kind,
                settings=settings,
                password_encrypted=secrets.encrypt(new.password) if new.password else None,
                from_email=from_email,
                from_name=from_name,
                hourly_limit=new.hourly_limit,
                daily_limit=new.daily_limit,
                make_default=new.make_default,
                now=utcnow(),
                track_opens=new.track_opens,
                track_clicks=new.track_clicks,
            )
    except IntegrityError:
        raise ProviderError(f"{user.email} already has a provider named {new.name!r}") from None


async def find_provider(database: Database, reference: str, user: User | None = None) -> Provider:
    async with database.read() as connection:
        provider = await repository.find_provider(connection, reference, user.id if user else None)
    if provider is None:
        raise ProviderError(
            f"no single provider {reference!r}; see `mailpass providers list` (give --user "
            "when names repeat across accounts)"
        )
    return provider


async def set_default(database: Database, provider: Provider) -> None:
    async with database.transaction() as connection:
        await repository.set_default_provider(connection, provider, utcnow())


async def set_tracking(
    database: Database,
    provider: Provider,
    *,
    track_opens: bool | None = None,
    track_clicks: bool | None = None,
) -> None:
    """Turn a provider's open and/or click tracking on or off (None: leave it as it is)."""
    async with database.transaction() as connection:
        await repository.update_tracking(
            connection,
            provider.id,
            track_opens=track_opens,
            track_clicks=track_clicks,
            now=utcnow(),
        )


async def test_provider(provider: Provider, secrets: SecretBox, settings: Settings) -> list[str]:
    """Connect, greet, secure and authenticate; the server's replies, line by line.

    Raises ``mailpass.providers.smtp.ProbeError`` with a one-line reason on failure.
    """
    return await probe(endpoint_for(provider, secrets, settings))


async def update_provider(
    database: Database, secrets: SecretBox, provider: Provider, changes: NewProvider
) -> None:
    """Replace a provider's settings with ``changes``.

    ``changes.password`` None keeps the stored password, unless the user name is removed too
    (no AUTH, so no password). The default flag is left alone: ``set_default`` changes it.
    A provider marked down (``providers.circuit``) is up again: the settings it failed with
    are gone, and the mail it held is due at once.
    """
    settings, from_email, from_name = _check(changes)
    drop_password = settings.username is None
    try:
        async with database.transaction() as connection:
            await repository.update_provider(
                connection,
                provider.id,
                name=changes.name.strip(),
                kind=changes.kind,
                settings=settings,
                password_encrypted=(
                    secrets.encrypt(changes.password)
                    if changes.password and not drop_password
                    else None
                ),
                keep_password=changes.password is None and not drop_password,
                from_email=from_email,
                from_name=from_name,
                hourly_limit=changes.hourly_limit,
                daily_limit=changes.daily_limit,
                now=utcnow(),
            )
            await repository.mark_reachable(connection, [provider.id], utcnow())
    except IntegrityError:
        raise ProviderError(f"there is already a provider named {changes.name.strip()!r}") from None


async def delete_provider(database: Database, provider: Provider) -> None:
    """Delete a provider; the account has no default afterwards if it was the default."""
    async with database.transaction() as connection:
        await repository.delete_provider(connection, provider.id)


async def list_providers(database: Database, user_id: int | None = None) -> list[Provider]:
    """Every provider, or one account's."""
    async with database.read() as connection:
        return await repository.list_providers(connection, user_id)


async def own_provider(database: Database, provider_id: int, user_id: int) -> Provider | None:
    """One of the account's providers by id; None for an unknown id or another account's."""
    async with database.read() as connection:
        return await repository.get_provider(connection, provider_id, user_id)


async def usage_by_provider(
    database: Database, user_id: int, now: datetime
) -> dict[int, ProviderUsage]:
    """The slots each of the account's providers took in the last hour and day."""
    async with database.read() as connection:
        return await repository.usage_by_provider(connection, user_id, now)


async def count_waiting(database: Database, provider_id: int) -> int:
    """Messages still waiting to go out through this provider."""
    async with database.read() as connection:
        return await repository.count_queued_for_provider(connection, provider_id)


async def point_at(database: Database, provider: Provider, settings: ConnectionSettings) -> None:
    """Point ``provider`` at another server and make it its account's default, together."""
    async with database.transaction() as connection:
        await repository.update_connection(connection, provider.id, settings, utcnow())
        await repository.mark_reachable(connection, [provider.id], utcnow())
        await repository.set_default_provider(connection, provider, utcnow())


async def set_hook_key(
    database: Database, secrets: SecretBox, provider: Provider, key: str | None
) -> None:
    """Set the key the provider's webhook payloads are checked with (None removes it).

    Raises ProviderError when the key does not suit the provider's kind.
    """
    if key is not None:
        try:
            key = check_hook_key(provider.kind, key)
        except HookKeyError as exc:
            raise ProviderError(str(exc)) from None
    async with database.transaction() as connection:
        await repository.set_hook_key(
            connection, provider.id, secrets.encrypt(key) if key else None, utcnow()
        )
