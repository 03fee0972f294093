"""One long-lived transport per provider per process, so connections are reused across requests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime

from mailpass.config import Settings
from mailpass.core.dns import Resolver
from mailpass.providers.direct import DirectOptions, DirectTransport, Signer
from mailpass.providers.metered import MeteredTransport
from mailpass.providers.models import Provider
from mailpass.providers.mta_sts import MtaSts
from mailpass.providers.secrets import SecretBox
from mailpass.providers.smtp import SmtpEndpoint, SmtpTransport
from mailpass.providers.transport import Transport

__all__ = ["AccountSigners", "TransportRegistry", "direct_options", "endpoint_for"]

# The DKIM signer of an account's sending domain (``domains.service.DomainService.signer``).
AccountSigners = Callable[[int, str], Awaitable[Signer | None]]


def direct_options(settings: Settings) -> DirectOptions:
    return DirectOptions(
        port=settings.direct_port,
        tls=settings.direct_tls,
        domain_connections=settings.direct_domain_connections,
        helo=settings.direct_helo or None,
        timeout=settings.smtp_timeout,
        connect_timeout=settings.smtp_connect_timeout,
        ca_file=str(settings.smtp_ca_file) if settings.smtp_ca_file else None,
    )


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

    def __init__(
        self,
        settings: Settings,
        secrets: SecretBox,
        *,
        resolver: Resolver | None = None,
        signers: AccountSigners | None = None,
    ) -> None:
        self._settings = settings
        self._secrets = secrets
        self._resolver = resolver or Resolver(settings.dns_resolver, settings.dns_timeout)
        self._signers = signers
        self._mta_sts: MtaSts | None = None  # made with the first direct transport
        self._transports: dict[int, tuple[datetime, MeteredTransport]] = {}
        self._retired: set[asyncio.Task[None]] = set()

    def get(self, provider: Provider) -> Transport:
        cached = self._transports.get(provider.id)
        if cached is not None and cached[0] == provider.updated_at:
            return cached[1]
        transport = MeteredTransport(self._make(provider), provider.id)
        self._transports[provider.id] = (provider.updated_at, transport)
        if cached is not None:
            # Sends already running on the old transport finish on it; then it closes.
            task = asyncio.get_running_loop().create_task(cached[1].close())
            self._retired.add(task)
            task.add_done_callback(self._retired.discard)
        return transport

    def _make(self, provider: Provider) -> Transport:
        if provider.kind == "direct":
            settings = self._settings
            if self._mta_sts is None and settings.direct_mta_sts:
                # One for every direct provider of the process: the policies they keep are
                # the recipient domains', the same whoever sends.
                self._mta_sts = MtaSts(
                    self._resolver,
                    port=settings.direct_mta_sts_port,
                    ca_file=str(settings.https_ca_file) if settings.https_ca_file else None,
                )
            return DirectTransport(
                self._resolver,
                self._signers_of(provider.user_id),
                direct_options(settings),
                self._mta_sts,
            )
        return SmtpTransport(
            endpoint_for(provider, self._secrets, self._settings),
            max_connections=self._settings.smtp_max_connections,
            hold_after=self._settings.provider_failure_threshold,
            hold_for=self._settings.provider_down_first,
        )

    def _signers_of(self, user_id: int) -> Callable[[str], Awaitable[Signer | None]]:
        signers = self._signers

        async def signer(domain: str) -> Signer | None:
            return await signers(user_id, domain) if signers is not None else None

        return signer

    async def close(self) -> None:
        transports = [transport for _, transport in self._transports.values()]
        self._transports.clear()
        await asyncio.gather(*(t.close() for t in transports), *self._retired)
