"""A provider's transport, measured: how long each SMTP transaction took, and the replies it
failed with (``runtime.metrics``), labelled with the provider's id."""

from __future__ import annotations

import time
from collections.abc import Sequence

from mailpass.providers.transport import DeliveryError, DeliveryResult, ProviderHeld, Transport
from mailpass.runtime.metrics import PROVIDER_ERRORS, SEND_SECONDS

__all__ = ["MeteredTransport"]


class MeteredTransport:
    """``transport``, timed. A send held back without being tried (``ProviderHeld``) is not a
    transaction, and is not counted."""

    __slots__ = ("_failed", "_provider", "_sent", "_transport")

    def __init__(self, transport: Transport, provider_id: int) -> None:
        self._transport = transport
        self._provider = str(provider_id)
        # The label lookups, once: a send then costs two clock reads and an add.
        self._sent = SEND_SECONDS.labels(self._provider, "sent")
        self._failed = SEND_SECONDS.labels(self._provider, "failed")

    async def send(
        self, envelope_from: str, recipients: Sequence[str], data: bytes
    ) -> DeliveryResult:
        started = time.perf_counter()
        try:
            result = await self._transport.send(envelope_from, recipients, data)
        except ProviderHeld:
            raise
        except DeliveryError as exc:
            self._failed.observe(time.perf_counter() - started)
            PROVIDER_ERRORS.labels(self._provider, _code(exc)).inc()
            raise
        self._sent.observe(time.perf_counter() - started)
        return result

    def hold(self, reason: str, seconds: float) -> None:
        self._transport.hold(reason, seconds)

    async def close(self) -> None:
        await self._transport.close()


def _code(error: DeliveryError) -> str:
    if error.smtp_code is not None:
        return str(error.smtp_code)
    return "unreachable" if error.unreachable else "other"
