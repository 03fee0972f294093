"""Outbound webhooks: each account's endpoints, the outbox its messages' events go into in
their own transaction, and the dispatcher that POSTs them, signed the Standard Webhooks way.

``mailpass.webhooks.verify`` is the SDK's check of a delivery where it arrives (it loads
nothing of the server)."""

from mailpass.client._webhooks import WebhookVerificationError, verify

__all__ = ["WebhookVerificationError", "verify"]
