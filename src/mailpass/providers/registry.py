"""One long-lived transport per provider per process, so connections are reused across requests."""

from __future__ import annotations

import asyncio
from datetime import datetime

from mailpass.config import Settings
from mailpass.providers.metered import MeteredTransport
from mailpass.providers.models import Provider
from mailpass.providers.secrets import SecretBox
from mailpass.providers.smtp import SmtpEndpoint, SmtpTransport
from mailpass.providers.transport import Transport

__all__ = ["TransportRegistry", "endpoint_for"]


def endpoint_for(provider: Provider, secrets: SecretBox, settings: Settings) -> SmtpEndpoint:
    password = secrets.decrypt(provider.password_encrypted) if provider.password_encrypted else None
    return SmtpEndpoint(
        host=provider.host,
        port=provider.port,
        security=provider.security,  # type: ignore[arg-type]  # validated when stored
        username=provider.username,
        password=password,
        timeout=settings.smtp_timeout,
        connect_timeout=settings.smtp_connect_timeout,
        ca_file=str(settings.smtp_ca_file) if settings.smtp_ca_file else None,
        networks=settings.provider_network_list,
    )


class TransportRegistry:
    """Transports keyed by provider; an edited provider (new ``updated_at``) gets a new one."""

    def __init__(self, settings: Settings, secrets: SecretBox) -> None:
        self._settings = settings
        self._secrets = secrets
        self._transports: dict[int, tuple[datetime, MeteredTransport]] = {}
        self._retired: set[asyncio.Task[None]] = set()

    def get(self, provider: Provider) -> Transport:
        cached = self._transports.get(provider.id)
        if cached is not None and cached[0] == provider.updated_at:
            return cached[1]
        transport = MeteredTransport(
            SmtpTransport(
                endpoint_for(provider, self._secrets, self._settings),
                max_connections=self._settings.smtp_max_connections,
                hold_after=self._settings.provider_failure_threshold,
                hold_for=self._settings.provider_down_first,
            ),
            provider.id,
        )
        self._transports[provider.id] = (provider.updated_at, transport)
        if cached is not None:
            # Sends already running on the old transport finish on it; then it closes.
            task = asyncio.get_running_loop().create_task(cached[1].close())
            self._retired.add(task)
            task.add_done_callback(self._retired.discard)
        return transport

    async def close(self) -> None:
        transports = [transport for _, transport in self._transports.values()]
        self._transports.clear()
        await asyncio.gather(*(t.close() for t in transports), *self._retired)
