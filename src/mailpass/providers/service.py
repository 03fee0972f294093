"""Provider management: what the command line and the dashboard do with SMTP providers."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from mailpass.accounts.keys import ApiKey
from mailpass.accounts.models import User
from mailpass.accounts.repository import find_key_by_hash
from mailpass.clock import utcnow
from mailpass.config import Settings
from mailpass.core.addresses import (
    AddressError,
    HeaderValueError,
    check_header_text,
    parse_mailbox,
)
from mailpass.core.dns import Resolver
from mailpass.providers import repository
from mailpass.providers.direct import probe_direct
from mailpass.providers.hooks import HookKeyError, check_hook_key, hook_url
from mailpass.providers.kinds import ConnectionSettings, resolve_connection
from mailpass.providers.models import Provider, ProviderUsage
from mailpass.providers.registry import direct_options, endpoint_for
from mailpass.providers.secrets import SecretBox
from mailpass.providers.smtp import probe
from mailpass.storage.database import Connection, Database

__all__ = [
    "NewProvider",
    "ProviderChanges",
    "ProviderError",
    "ProviderService",
    "add_account_provider",
    "add_provider",
    "change_provider",
    "count_waiting",
    "delete_provider",
    "fallbacks_of",
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
    # The providers (ids of the same account, in order) its mail fails over to. Adding: None
    # is none; changing: None leaves them as they are.
    fallbacks: tuple[int, ...] | None = None


MAX_FALLBACKS = 5


async def _check_fallbacks(
    connection: Connection, user_id: int, provider_id: int | None, fallbacks: tuple[int, ...]
) -> list[int]:
    """The fallbacks as stored, or a ProviderError naming what is wrong with them."""
    if len(fallbacks) > MAX_FALLBACKS:
        raise ProviderError(f"a provider has at most {MAX_FALLBACKS} fallbacks")
    if len(set(fallbacks)) < len(fallbacks):
        raise ProviderError("a fallback is named twice")
    if provider_id is not None and provider_id in fallbacks:
        raise ProviderError("a provider cannot be its own fallback")
    unknown = sorted(set(fallbacks) - await repository.account_provider_ids(connection, user_id))
    if unknown:
        raise ProviderError(
            f"no provider {', '.join(map(str, unknown))} in this account to fall back on"
        )
    return list(fallbacks)


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
    return await add_account_provider(database, secrets, user.id, new, owner=user.email)


async def add_account_provider(
    database: Database,
    secrets: SecretBox,
    user_id: int,
    new: NewProvider,
    *,
    hook_key: str | None = None,
    owner: str = "this account",
) -> Provider:
    """A new provider of the account ``user_id``, with its webhook key when one is given:
    everything is checked before anything is written, and written in one transaction."""
    settings, from_email, from_name = _check(new)
    hook_key_encrypted = _encrypted_hook_key(secrets, new.kind, hook_key)
    try:
        async with database.transaction() as connection:
            provider = await repository.insert_provider(
                connection,
                user_id=user_id,
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
            if hook_key_encrypted is not None:
                now = utcnow()
                await repository.set_hook_key(connection, provider.id, hook_key_encrypted, now)
                provider = replace(provider, hook_key_encrypted=hook_key_encrypted)
            if new.fallbacks:
                fallbacks = await _check_fallbacks(connection, user_id, provider.id, new.fallbacks)
                await repository.set_fallbacks(connection, provider.id, fallbacks)
                provider = replace(provider, fallback_ids=fallbacks)
            return provider
    except IntegrityError:
        raise ProviderError(f"{owner} already has a provider named {new.name.strip()!r}") from None


def _encrypted_hook_key(secrets: SecretBox, kind: str, key: str | None) -> str | None:
    if key is None:
        return None
    try:
        return secrets.encrypt(check_hook_key(kind, key))
    except HookKeyError as exc:
        raise ProviderError(str(exc)) from None


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
    if provider.kind == "direct":
        resolver = Resolver(settings.dns_resolver, settings.dns_timeout)
        return await probe_direct(resolver, direct_options(settings))
    return await probe(endpoint_for(provider, secrets, settings))


@dataclass(frozen=True, slots=True)
class ProviderChanges:
    """What ``change_provider`` changes besides the settings (None: left as it is)."""

    track_opens: bool | None = None
    track_clicks: bool | None = None
    make_default: bool = False
    replace_hook_key: bool = False  # with ``hook_key`` None: the key is removed
    hook_key: str | None = None
    remove_password: bool = False


async def change_provider(
    database: Database,
    secrets: SecretBox,
    provider: Provider,
    settings: NewProvider,
    changes: ProviderChanges,
) -> Provider:
    """Replace a provider's settings with ``settings``, and change what ``changes`` names
    (tracking, the webhook key, the default), all checked first and then written in one
    transaction; the provider as it is afterwards.

    ``settings.password`` None keeps the stored password, unless the user name is removed too
    (no AUTH, so no password) or ``changes.remove_password``. A provider marked down
    (``providers.circuit``) is up again: the settings it failed with are gone, and the mail it
    held is due at once.
    """
    if settings.kind != provider.kind:
        raise ProviderError(
            f"a provider's kind cannot change (it is {provider.kind}); add another provider"
        )
    connection_settings, from_email, from_name = _check(settings)
    hook_key_encrypted = (
        _encrypted_hook_key(secrets, provider.kind, changes.hook_key)
        if changes.replace_hook_key
        else None
    )
    drop_password = connection_settings.username is None
    now = utcnow()
    try:
        async with database.transaction() as connection:
            await repository.update_provider(
                connection,
                provider.id,
                name=settings.name.strip(),
                kind=provider.kind,
                settings=connection_settings,
                password_encrypted=(
                    secrets.encrypt(settings.password)
                    if settings.password and not drop_password
                    else None
                ),
                keep_password=(
                    settings.password is None and not drop_password and not changes.remove_password
                ),
                from_email=from_email,
                from_name=from_name,
                hourly_limit=settings.hourly_limit,
                daily_limit=settings.daily_limit,
                now=now,
            )
            await repository.mark_reachable(connection, [provider.id], now)
            if changes.track_opens is not None or changes.track_clicks is not None:
                await repository.update_tracking(
                    connection,
                    provider.id,
                    track_opens=changes.track_opens,
                    track_clicks=changes.track_clicks,
                    now=now,
                )
            if changes.replace_hook_key:
                await repository.set_hook_key(connection, provider.id, hook_key_encrypted, now)
            if changes.make_default:
                await repository.set_default_provider(connection, provider, now)
            if settings.fallbacks is not None:
                fallbacks = await _check_fallbacks(
                    connection, provider.user_id, provider.id, settings.fallbacks
                )
                await repository.set_fallbacks(connection, provider.id, fallbacks)
            changed = await repository.get_provider(connection, provider.id, provider.user_id)
    except IntegrityError:
        name = settings.name.strip()
        raise ProviderError(f"there is already a provider named {name!r}") from None
    if changed is None:  # deleted meanwhile
        raise ProviderError(f"provider {provider.id} was deleted meanwhile")
    return changed


async def update_provider(
    database: Database, secrets: SecretBox, provider: Provider, changes: NewProvider
) -> None:
    """Replace a provider's settings with ``changes`` (the dashboard's form): its tracking,
    webhook key and default flag are left as they are."""
    await change_provider(database, secrets, provider, changes, ProviderChanges())


async def delete_provider(database: Database, provider: Provider) -> None:
    """Delete a provider; the account has no default afterwards if it was the default."""
    async with database.transaction() as connection:
        await repository.delete_provider(connection, provider.id, provider.user_id)


async def list_providers(database: Database, user_id: int | None = None) -> list[Provider]:
    """Every provider, or one account's."""
    async with database.read() as connection:
        return await repository.list_providers(connection, user_id)


async def fallbacks_of(database: Database, provider: Provider) -> list[Provider]:
    """The providers ``provider``'s mail fails over to, in order (those still there)."""
    async with database.read() as connection:
        found = await repository.providers_by_id(connection, list(provider.fallbacks))
    return [
        found[i] for i in provider.fallbacks if i in found and found[i].user_id == provider.user_id
    ]


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
    encrypted = _encrypted_hook_key(secrets, provider.kind, key)
    async with database.transaction() as connection:
        await repository.set_hook_key(connection, provider.id, encrypted, utcnow())


class ProviderService:
    """What the management API does with an account's providers."""

    def __init__(self, settings: Settings, database: Database, secrets: SecretBox) -> None:
        self.settings = settings
        self.database = database
        self.secrets = secrets

    async def find_key(self, key_hash: str) -> tuple[ApiKey | None, None]:
        return await find_key_by_hash(self.database, key_hash), None

    async def providers(self, user_id: int) -> list[Provider]:
        return await list_providers(self.database, user_id)

    async def provider(self, user_id: int, provider_id: int) -> Provider | None:
        return await own_provider(self.database, provider_id, user_id)

    async def create(self, user_id: int, new: NewProvider, hook_key: str | None) -> Provider:
        return await add_account_provider(
            self.database, self.secrets, user_id, new, hook_key=hook_key
        )

    async def change(
        self, provider: Provider, settings: NewProvider, changes: ProviderChanges
    ) -> Provider:
        return await change_provider(self.database, self.secrets, provider, settings, changes)

    async def delete(self, provider: Provider) -> None:
        await delete_provider(self.database, provider)

    async def make_default(self, provider: Provider) -> Provider:
        await set_default(self.database, provider)
        return replace(provider, is_default=True)

    async def test(self, provider: Provider) -> list[str]:
        """The probe's transcript; raises ``ProbeError`` with the reason it failed."""
        return await test_provider(provider, self.secrets, self.settings)

    def hook_url(self, provider: Provider) -> str | None:
        return hook_url(self.settings, provider)
