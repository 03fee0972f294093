"""What ``POST`` and ``PATCH /api/v1/providers`` take. Unknown fields are refused by name: a
provider saved without the setting its owner meant to give would send the wrong way."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mailpass.core.text import check_control_free
from mailpass.providers.kinds import Kind, Security, region_of
from mailpass.providers.models import Provider
from mailpass.providers.service import NewProvider, ProviderChanges

__all__ = ["ProviderFields", "ProviderPatch"]

MAX_LIMIT = 10_000_000  # messages; far above any provider's, small enough for every integer column
Limit = Field(default=None, ge=1, le=MAX_LIMIT)
Text = Field(default=None, max_length=320)


class ProviderFields(BaseModel):
    """A new provider: ``kind`` and ``name``, and what the kind needs (``host`` for smtp,
    ``region`` for ses, the credentials for all that authenticate)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100)
    kind: Kind
    host: str | None = Field(default=None, max_length=253)
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Security | None = None
    username: str | None = Text
    password: str | None = Field(default=None, max_length=1000)  # write-only
    region: str | None = Field(default=None, max_length=40)
    from_email: str | None = Text
    from_name: str | None = Field(default=None, max_length=200)
    hourly_limit: int | None = Limit
    daily_limit: int | None = Limit
    default: bool = False
    track_opens: bool = False
    track_clicks: bool = False
    webhook_key: str | None = Field(default=None, max_length=1000)  # write-only
    fallbacks: list[int] | None = Field(default=None, max_length=5)

    _control_free = field_validator(
        "name", "host", "username", "password", "region", "webhook_key"
    )(check_control_free)

    def new_provider(self) -> NewProvider:
        return NewProvider(
            name=self.name,
            kind=self.kind,
            host=self.host,
            port=self.port,
            security=self.security,
            username=self.username,
            password=self.password,
            region=self.region,
            from_email=self.from_email,
            from_name=self.from_name,
            hourly_limit=self.hourly_limit,
            daily_limit=self.daily_limit,
            make_default=self.default,
            track_opens=self.track_opens,
            track_clicks=self.track_clicks,
            fallbacks=tuple(self.fallbacks or ()),
        )


class ProviderPatch(BaseModel):
    """Changes to a provider: the fields given replace the stored ones (null clears an
    optional one: a limit, the user name, the password, the webhook key); the rest stay."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(default=None, min_length=1, max_length=100)
    kind: Kind | None = None  # only as it is: a provider's kind does not change
    host: str | None = Field(default=None, max_length=253)
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Security | None = None
    username: str | None = Text
    password: str | None = Field(default=None, max_length=1000)
    region: str | None = Field(default=None, max_length=40)
    from_email: str | None = Text
    from_name: str | None = Field(default=None, max_length=200)
    hourly_limit: int | None = Limit
    daily_limit: int | None = Limit
    default: Literal[True] | None = None  # another provider made default un-defaults this one
    track_opens: bool | None = None
    track_clicks: bool | None = None
    webhook_key: str | None = Field(default=None, max_length=1000)
    fallbacks: list[int] | None = Field(default=None, max_length=5)  # null: none

    _control_free = field_validator(
        "name", "host", "username", "password", "region", "webhook_key"
    )(check_control_free)

    def settings_for(self, provider: Provider) -> NewProvider:
        """The provider's settings with this patch applied."""
        given = self.model_fields_set

        def pick(name: str, current: object) -> object:
            return getattr(self, name) if name in given else current

        region = pick("region", region_of(provider.kind, provider.host))
        # A new region of a managed kind names a new host, unless a host is given too.
        host = pick("host", None if "region" in given else provider.host)
        # A new security mode without a port takes that mode's port.
        port = pick("port", None if "security" in given else provider.port)
        return NewProvider(
            name=str(pick("name", provider.name) or ""),
            kind=str(pick("kind", provider.kind) or provider.kind),
            host=host,  # type: ignore[arg-type]
            port=port,  # type: ignore[arg-type]
            security=pick("security", provider.security),  # type: ignore[arg-type]
            username=pick("username", provider.username),  # type: ignore[arg-type]
            password=self.password if "password" in given else None,
            region=region,  # type: ignore[arg-type]
            from_email=pick("from_email", provider.from_email),  # type: ignore[arg-type]
            from_name=pick("from_name", provider.from_name),  # type: ignore[arg-type]
            hourly_limit=pick("hourly_limit", provider.hourly_limit),  # type: ignore[arg-type]
            daily_limit=pick("daily_limit", provider.daily_limit),  # type: ignore[arg-type]
            fallbacks=tuple(self.fallbacks or ()) if "fallbacks" in given else None,
        )

    def changes(self) -> ProviderChanges:
        given = self.model_fields_set
        return ProviderChanges(
            track_opens=self.track_opens,
            track_clicks=self.track_clicks,
            make_default=bool(self.default),
            replace_hook_key="webhook_key" in given,
            hook_key=self.webhook_key,
            remove_password="password" in given and self.password is None,
        )
