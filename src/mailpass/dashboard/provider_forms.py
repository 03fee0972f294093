"""The provider form: presets per kind, and turning a posted form into a ``NewProvider``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData

from mailpass.dashboard.context import field as text_field
from mailpass.providers.kinds import KINDS, MAILGUN_HOSTS, SECURITY_MODES, region_of
from mailpass.providers.models import Provider
from mailpass.providers.service import NewProvider

__all__ = ["PRESETS", "Preset", "ProviderForm", "form_from_provider", "parse_provider_form"]

MAX_LIMIT = 10_000_000  # messages; far above any provider's, small enough for every integer column


@dataclass(frozen=True, slots=True)
class Preset:
    """What the form asks for a kind; the rest comes from ``providers.kinds``."""

    kind: str
    title: str
    fields: tuple[str, ...]
    hint: str
    regions: tuple[str, ...] = ()  # suggested, or with ``regions_only`` the only choices
    regions_only: bool = False
    username_label: str = "User name"
    secret_label: str = "Password"  # noqa: S105  # a form label, not a secret


PRESETS: dict[str, Preset] = {
    "smtp": Preset(
        "smtp",
        "SMTP server",
        ("host", "port", "security", "username", "password"),
        "Any SMTP server. Port 587 with STARTTLS is the usual submission setup.",
    ),
    "ses": Preset(
        "ses",
        "Amazon SES",
        ("region", "username", "password"),
        "Uses email-smtp.<region>.amazonaws.com:587 with STARTTLS. Enter the SMTP credentials "
        "created in the SES console (not your AWS access keys).",
        regions=(
            "us-east-1",
            "us-east-2",
            "us-west-2",
            "ca-central-1",
            "eu-west-1",
            "eu-west-2",
            "eu-central-1",
            "eu-north-1",
            "ap-south-1",
            "ap-northeast-1",
            "ap-southeast-1",
            "ap-southeast-2",
            "sa-east-1",
        ),
        username_label="SMTP user name",
        secret_label="SMTP password",  # noqa: S106
    ),
    "sendgrid": Preset(
        "sendgrid",
        "SendGrid",
        ("password",),
        "Uses smtp.sendgrid.net:587 with STARTTLS and the user name apikey.",
        secret_label="API key",  # noqa: S106
    ),
    "mailgun": Preset(
        "mailgun",
        "Mailgun",
        ("region", "username", "password"),
        "Uses smtp.mailgun.org (US) or smtp.eu.mailgun.org (EU), port 587, STARTTLS.",
        regions=tuple(MAILGUN_HOSTS),
        regions_only=True,
        username_label="SMTP login (e.g. postmaster@mg.yourdomain.com)",
        secret_label="SMTP password",  # noqa: S106
    ),
    "direct": Preset(
        "direct",
        "MailPass (direct delivery)",
        (),
        "No relay: MailPass delivers to each recipient domain's mail servers itself, signing "
        "with your domain's DKIM key. Add and verify the sending domain under Domains first; "
        "this server's address must be allowed to send on port 25.",
    ),
}
assert set(PRESETS) == set(KINDS)


@dataclass
class ProviderForm:
    """The form's values as shown (never a password) and the problems found, per field."""

    kind: str
    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    message: str | None = None  # a problem that belongs to no single field

    @property
    def preset(self) -> Preset:
        return PRESETS[self.kind]

    @property
    def security_modes(self) -> tuple[str, ...]:
        return SECURITY_MODES

    def context(self) -> dict[str, Any]:
        return {"form": self, "preset": self.preset, "presets": PRESETS}


def form_from_provider(provider: Provider) -> ProviderForm:
    def text(value: object) -> str:
        return "" if value is None else str(value)

    return ProviderForm(
        kind=provider.kind,
        values={
            "name": provider.name,
            "host": provider.host,
            "port": str(provider.port),
            "security": provider.security,
            "username": text(provider.username),
            "region": region_of(provider.kind, provider.host) or "",
            "from_email": text(provider.from_email),
            "from_name": text(provider.from_name),
            "hourly_limit": text(provider.hourly_limit),
            "daily_limit": text(provider.daily_limit),
        },
    )


def _number(form: ProviderForm, name: str, low: int, high: int) -> int | None:
    raw = form.values.get(name, "")
    if not raw:
        return None
    if not raw.isdigit() or not low <= int(raw) <= high:
        form.errors[name] = f"must be a whole number from {low} to {high}"
        return None
    return int(raw)


def parse_provider_form(posted: FormData, kind: str) -> tuple[ProviderForm, NewProvider | None]:
    """The form as posted, and the provider it describes (None when a field is wrong).

    Only the fields of the kind's preset are read; an empty password means "unchanged".
    """
    preset = PRESETS[kind]
    names = (
        "name",
        "from_email",
        "from_name",
        "hourly_limit",
        "daily_limit",
        "fallbacks",
        *preset.fields,
    )
    form = ProviderForm(
        kind=kind, values={name: text_field(posted, name) for name in names if name != "password"}
    )
    if not form.values["name"]:
        form.errors["name"] = "is required"
    if "host" in preset.fields and not form.values.get("host"):
        form.errors["host"] = "is required"
    if "security" in preset.fields and form.values.get("security") not in SECURITY_MODES:
        form.errors["security"] = f"must be one of {', '.join(SECURITY_MODES)}"
    if "region" in preset.fields and not form.values.get("region"):
        form.errors["region"] = "is required"
    elif preset.regions_only and form.values.get("region") not in preset.regions:
        form.errors["region"] = f"must be one of {', '.join(preset.regions)}"
    port = _number(form, "port", 1, 65535) if "port" in preset.fields else None
    hourly = _number(form, "hourly_limit", 1, MAX_LIMIT)
    daily = _number(form, "daily_limit", 1, MAX_LIMIT)
    password = posted.get("password") if "password" in preset.fields else None
    if form.errors:
        return form, None
    return form, NewProvider(
        name=form.values["name"],
        kind=kind,
        host=form.values.get("host") or None,
        port=port,
        security=form.values.get("security") or None,
        username=form.values.get("username") or None,
        password=password if isinstance(password, str) and password else None,
        region=form.values.get("region") or None,
        from_email=form.values["from_email"] or None,
        from_name=form.values["from_name"] or None,
        hourly_limit=hourly,
        daily_limit=daily,
        make_default=bool(posted.get("make_default")),
    )
