"""``Client`` and ``AsyncClient``: the same API, blocking and ``async``."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self

import httpx

from mailpass.client._base import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_RETRY_BACKOFF,
    DEFAULT_TIMEOUT,
    ApiCall,
    RetryPolicy,
    batch_body,
    cancel_path,
    client_headers,
    resolve_api_key,
    resolve_base_url,
    result_data,
    send_body,
    status_path,
    suppression_path,
    suppressions_path,
    transport_error,
)
from mailpass.client._domains import AsyncDomains, Domains
from mailpass.client._management import (
    AsyncKeys,
    AsyncProviders,
    AsyncWebhooks,
    Keys,
    Providers,
    Webhooks,
)
from mailpass.client._models import (
    BatchResult,
    CancelledMessage,
    MessageStatus,
    SentMessage,
    SuppressionPage,
)
from mailpass.client._types import AttachmentParams, MessageParams, Recipients, TimeoutTypes

__all__ = [
    "AsyncClient",
    "AsyncMail",
    "AsyncSuppressions",
    "Client",
    "Mail",
    "Suppressions",
]

log = logging.getLogger("mailpass.client")


class Client:
    """A MailPass API client::

        client = Client("mp_live_…", base_url="https://mail.example.com")
        sent = client.mail.send(to="user@example.com", subject="Hello", html="<p>Hi</p>")
        print(sent.message_id)

    ``api_key`` defaults to ``$MAILPASS_API_KEY`` and ``base_url`` to ``$MAILPASS_API_URL``
    (else ``http://127.0.0.1:8000``, where ``mailpass dev`` listens). Each call is retried up to
    ``max_retries`` times on a dropped connection, a timeout, 429 and 5xx answers, carrying one
    ``Idempotency-Key`` on every try so that a retry never sends twice. ``transport`` replaces
    the network, e.g. with ``httpx.MockTransport`` in your tests. Use it as a context manager,
    or call ``close()``.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | httpx.URL | None = None,
        timeout: TimeoutTypes = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        retry_backoff: float = DEFAULT_RETRY_BACKOFF,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = resolve_base_url(base_url)
        self.retry_policy = RetryPolicy(max_retries=max_retries, backoff=retry_backoff)
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=client_headers(resolve_api_key(api_key), headers),
            timeout=timeout,
            transport=transport,
        )
        self.mail = Mail(self)
        self.suppressions = Suppressions(self)
        self.providers = Providers(self)
        self.domains = Domains(self)
        self.keys = Keys(self)
        self.webhooks = Webhooks(self)

    def _request(self, call: ApiCall) -> tuple[dict[str, Any], bool]:
        """Make ``call``, retrying as the policy says; its ``data`` and whether it was a replay."""
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._http.request(
                    call.method, call.path, content=call.content, headers=call.headers()
                )
            except httpx.TransportError as exc:
                delay = (
                    self.retry_policy.after_transport_error(attempt)
                    if call.may_resend(exc)
                    else None
                )
                if delay is None:
                    raise transport_error(exc) from exc
                log.info("retrying %s %s in %.1f s after %r", call.method, call.path, delay, exc)
            else:
                delay = (
                    None
                    if response.is_success
                    else self.retry_policy.after_response(response, attempt)
                )
                if delay is None:
                    return result_data(response)
                log.info(
                    "retrying %s %s in %.1f s after HTTP %s",
                    call.method,
                    call.path,
                    delay,
                    response.status_code,
                )
            time.sleep(delay)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncClient:
    """``Client`` for ``asyncio``: the same options, the same calls, awaited::

    async with AsyncClient() as client:
        sent = await client.mail.send(to="user@example.com", subject="Hi", text="Hello")
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | httpx.URL | None = None,
        timeout: TimeoutTypes = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        retry_backoff: float = DEFAULT_RETRY_BACKOFF,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = resolve_base_url(base_url)
        self.retry_policy = RetryPolicy(max_retries=max_retries, backoff=retry_backoff)
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=client_headers(resolve_api_key(api_key), headers),
            timeout=timeout,
            transport=transport,
        )
        self.mail = AsyncMail(self)
        self.suppressions = AsyncSuppressions(self)
        self.providers = AsyncProviders(self)
        self.domains = AsyncDomains(self)
        self.keys = AsyncKeys(self)
        self.webhooks = AsyncWebhooks(self)

    async def _request(self, call: ApiCall) -> tuple[dict[str, Any], bool]:
        """Make ``call``, retrying as the policy says; its ``data`` and whether it was a replay."""
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._http.request(
                    call.method, call.path, content=call.content, headers=call.headers()
                )
            except httpx.TransportError as exc:
                delay = (
                    self.retry_policy.after_transport_error(attempt)
                    if call.may_resend(exc)
                    else None
                )
                if delay is None:
                    raise transport_error(exc) from exc
                log.info("retrying %s %s in %.1f s after %r", call.method, call.path, delay, exc)
            else:
                delay = (
                    None
                    if response.is_success
                    else self.retry_policy.after_response(response, attempt)
                )
                if delay is None:
                    return result_data(response)
                log.info(
                    "retrying %s %s in %.1f s after HTTP %s",
                    call.method,
                    call.path,
                    delay,
                    response.status_code,
                )
            await asyncio.sleep(delay)

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class Mail:
    """``client.mail``: the seed's three mail endpoints."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def send(
        self,
        *,
        to: Recipients,
        subject: str,
        html: str | None = None,
        text: str | None = None,
        from_email: str | None = None,
        from_name: str | None = None,
        reply_to: Recipients | None = None,
        cc: Recipients | None = None,
        bcc: Recipients | None = None,
        tags: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        list_unsubscribe: str | Sequence[str] | None = None,
        attachments: Sequence[AttachmentParams | Mapping[str, Any]] | None = None,
        scheduled_at: datetime | str | None = None,
        idempotency_key: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> SentMessage:
        """Send one message now; returns once the provider has accepted it.

        ``idempotency_key`` defaults to a new random key for this call (used by its retries);
        pass your own to make retries of your own safe too, e.g. ``f"order-{id}-receipt"``.
        ``extra_body`` adds fields this client does not know by name. ``headers`` are header
        fields of the mail's own; ``list_unsubscribe`` an https URL and/or a mailto: address.
        ``attachments``: files as ``{"filename": ..., "content": bytes}`` (see
        ``AttachmentParams``). With ``scheduled_at`` (a datetime, naive ones UTC, or an ISO 8601
        string) the message is queued until then: ``status`` is ``"queued"``, and
        ``mail.cancel(message_id)`` takes it back.
        """
        body = send_body(
            to=to,
            subject=subject,
            html=html,
            text=text,
            from_email=from_email,
            from_name=from_name,
            reply_to=reply_to,
            cc=cc,
            bcc=bcc,
            tags=tags,
            metadata=metadata,
            extra_body=extra_body,
            headers=headers,
            list_unsubscribe=list_unsubscribe,
            attachments=attachments,
            scheduled_at=scheduled_at,
        )
        data, replayed = self._client._request(
            ApiCall.post("api/v1/mail/send", body, idempotency_key)
        )
        return SentMessage.from_wire(data, replayed=replayed)

    def send_batch(
        self,
        *,
        messages: Sequence[MessageParams | Mapping[str, Any]],
        from_email: str | None = None,
        from_name: str | None = None,
        reply_to: Recipients | None = None,
        tags: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        list_unsubscribe: str | Sequence[str] | None = None,
        scheduled_at: datetime | str | None = None,
        idempotency_key: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> BatchResult:
        """Queue up to 100 messages; the top-level fields fill in what an item leaves out.

        An item that fails validation fails alone: see ``result.messages[i].error``.
        """
        body = batch_body(
            messages=messages,
            from_email=from_email,
            from_name=from_name,
            reply_to=reply_to,
            tags=tags,
            metadata=metadata,
            extra_body=extra_body,
            headers=headers,
            list_unsubscribe=list_unsubscribe,
            scheduled_at=scheduled_at,
        )
        data, replayed = self._client._request(
            ApiCall.post("api/v1/mail/send-batch", body, idempotency_key)
        )
        return BatchResult.from_wire(data, replayed=replayed)

    def status(self, message_id: str) -> MessageStatus:
        """A message and its events; ``message_id`` with or without its angle brackets."""
        data, _ = self._client._request(ApiCall("GET", status_path(message_id)))
        return MessageStatus.from_wire(data)

    def cancel(self, message_id: str) -> CancelledMessage:
        """Take a scheduled (or still queued) message out of the queue for good; raises
        ``NotCancellableError`` once it is being sent, sent or failed."""
        data, _ = self._client._request(ApiCall("POST", cancel_path(message_id)))
        return CancelledMessage.from_wire(data)


class AsyncMail:
    """``client.mail`` of an ``AsyncClient``: ``Mail``'s calls, awaited."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def send(
        self,
        *,
        to: Recipients,
        subject: str,
        html: str | None = None,
        text: str | None = None,
        from_email: str | None = None,
        from_name: str | None = None,
        reply_to: Recipients | None = None,
        cc: Recipients | None = None,
        bcc: Recipients | None = None,
        tags: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        list_unsubscribe: str | Sequence[str] | None = None,
        attachments: Sequence[AttachmentParams | Mapping[str, Any]] | None = None,
        scheduled_at: datetime | str | None = None,
        idempotency_key: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> SentMessage:
        """See ``Mail.send``."""
        body = send_body(
            to=to,
            subject=subject,
            html=html,
            text=text,
            from_email=from_email,
            from_name=from_name,
            reply_to=reply_to,
            cc=cc,
            bcc=bcc,
            tags=tags,
            metadata=metadata,
            extra_body=extra_body,
            headers=headers,
            list_unsubscribe=list_unsubscribe,
            attachments=attachments,
            scheduled_at=scheduled_at,
        )
        data, replayed = await self._client._request(
            ApiCall.post("api/v1/mail/send", body, idempotency_key)
        )
        return SentMessage.from_wire(data, replayed=replayed)

    async def send_batch(
        self,
        *,
        messages: Sequence[MessageParams | Mapping[str, Any]],
        from_email: str | None = None,
        from_name: str | None = None,
        reply_to: Recipients | None = None,
        tags: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        list_unsubscribe: str | Sequence[str] | None = None,
        scheduled_at: datetime | str | None = None,
        idempotency_key: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> BatchResult:
        """See ``Mail.send_batch``."""
        body = batch_body(
            messages=messages,
            from_email=from_email,
            from_name=from_name,
            reply_to=reply_to,
            tags=tags,
            metadata=metadata,
            extra_body=extra_body,
            headers=headers,
            list_unsubscribe=list_unsubscribe,
            scheduled_at=scheduled_at,
        )
        data, replayed = await self._client._request(
            ApiCall.post("api/v1/mail/send-batch", body, idempotency_key)
        )
        return BatchResult.from_wire(data, replayed=replayed)

    async def status(self, message_id: str) -> MessageStatus:
        """See ``Mail.status``."""
        data, _ = await self._client._request(ApiCall("GET", status_path(message_id)))
        return MessageStatus.from_wire(data)

    async def cancel(self, message_id: str) -> CancelledMessage:
        """See ``Mail.cancel``."""
        data, _ = await self._client._request(ApiCall("POST", cancel_path(message_id)))
        return CancelledMessage.from_wire(data)


class Suppressions:
    """``client.suppressions``: the account's suppression list (a key with the
    ``suppressions`` permission)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def list(
        self, *, limit: int | None = None, cursor: str | None = None, search: str | None = None
    ) -> SuppressionPage:
        """A page, newest first; pass its ``next_cursor`` as ``cursor`` for the next one."""
        data, _ = self._client._request(ApiCall("GET", suppressions_path(limit, cursor, search)))
        return SuppressionPage.from_wire(data)

    def add(self, email: str, *, reason: str = "manual") -> bool:
        """Suppress ``email``; False when it was suppressed already."""
        body = {"email": email, "reason": reason}
        data, _ = self._client._request(ApiCall.post("api/v1/suppressions", body, None))
        return bool(data["added"])

    def remove(self, email: str) -> None:
        """Send to ``email`` again; ``NotFoundError`` when it was not suppressed."""
        self._client._request(ApiCall("DELETE", suppression_path(email)))


class AsyncSuppressions:
    """``client.suppressions`` of an ``AsyncClient``: ``Suppressions``' calls, awaited."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def list(
        self, *, limit: int | None = None, cursor: str | None = None, search: str | None = None
    ) -> SuppressionPage:
        call = ApiCall("GET", suppressions_path(limit, cursor, search))
        data, _ = await self._client._request(call)
        return SuppressionPage.from_wire(data)

    async def add(self, email: str, *, reason: str = "manual") -> bool:
        body = {"email": email, "reason": reason}
        data, _ = await self._client._request(ApiCall.post("api/v1/suppressions", body, None))
        return bool(data["added"])

    async def remove(self, email: str) -> None:
        await self._client._request(ApiCall("DELETE", suppression_path(email)))
