"""Provider webhooks under test: an account whose provider is the kind under test (its SMTP
relay pointed at the test's sink), mail really sent through it, and each provider's payloads
signed the provider's way with keys made here. SNS's certificates and subscription
confirmations are served over HTTPS by a local server (``SnsHost``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from intake_helpers import Hooked, SnsHost

from mailpass.config import Settings, load_instance_secret
from mailpass.providers import service as providers
from mailpass.providers.hooks import hook_path
from mailpass.providers.secrets import SecretBox


@pytest.fixture
def settings(settings: Settings, smtp_ca_file: Path) -> Settings:
    """SNS's hosts are the local ``SnsHost`` here, its certificate issued by the test CA."""
    return settings.model_copy(
        update={"sns_host_pattern": "localhost", "https_ca_file": smtp_ca_file}
    )


@pytest.fixture
def make_hooked(make_account, make_smtp_sink, database, settings):  # type: ignore[no-untyped-def]
    """An account whose default provider is of ``kind``, relaying to the test's sink, with
    ``key`` as its webhook key."""

    async def make(
        kind: str,
        key: str | None = None,
        email: str = "owner@example.com",
        permissions: list[str] | None = None,
        data_replies: list[str] | None = None,
    ) -> Hooked:
        sink = await make_smtp_sink(auth={"apikey": "relay-password"}, data_replies=data_replies)
        options: dict[str, Any] = {"kind": kind, "username": "apikey", "password": "relay-password"}
        if kind == "ses":
            options["region"] = "us-east-1"
        account = await make_account(
            email,
            sink=sink,
            permissions=permissions or ["mail", "suppressions"],
            provider_options=options,
        )
        provider = account.provider
        if key is not None:
            secret_box = SecretBox(load_instance_secret(settings))
            await providers.set_hook_key(database, secret_box, provider, key)
            provider = await providers.find_provider(database, str(provider.id))
        return Hooked(account.headers, provider, hook_path(provider), account.user.id)

    return make


@pytest.fixture
def sns_host() -> Iterator[SnsHost]:
    host = SnsHost()
    yield host
    host.close()
