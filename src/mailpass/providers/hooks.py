"""A provider's webhook: where its events reach MailPass, and the key that proves they are its.

Each managed provider reports what happened to a mail after it took it (delivered, bounced,
complained) by calling a URL of ours: ``/hooks/{provider_id}/{kind}/{token}``, the token random
and the provider's own, so that nobody can guess another account's hook. The payloads are
checked as each provider documents (``intake``): Amazon SES's through SNS by its signing
certificate, SendGrid's with the account's public key, Mailgun's with its signing key.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from mailpass.config import Settings
from mailpass.providers.models import Provider

__all__ = [
    "HOOK_KINDS",
    "KEYED_KINDS",
    "HookKeyError",
    "check_hook_key",
    "hook_path",
    "hook_url",
    "sendgrid_public_key",
]

# The kinds whose events come by webhook, and those among them whose payloads need a key.
HOOK_KINDS = ("ses", "sendgrid", "mailgun")
KEYED_KINDS = ("sendgrid", "mailgun")
HOOK_PREFIX = "/hooks/"


class HookKeyError(ValueError):
    """A webhook key that cannot be used; the message says why."""


def hook_path(provider: Provider) -> str:
    return f"{HOOK_PREFIX}{provider.id}/{provider.kind}/{provider.hook_token}"


def hook_url(settings: Settings, provider: Provider) -> str | None:
    """The URL to give the provider's webhook settings; None for a kind without webhooks."""
    if provider.kind not in HOOK_KINDS or provider.hook_token is None:
        return None
    return settings.public_url.rstrip("/") + hook_path(provider)


def sendgrid_public_key(key: str) -> ec.EllipticCurvePublicKey:
    """The verification key SendGrid shows for its signed Event Webhook: base64 of the DER
    public key, an ECDSA key on P-256."""
    try:
        public_key = load_der_public_key(base64.b64decode(key.strip(), validate=True))
    except (binascii.Error, ValueError) as exc:
        raise HookKeyError(
            "a SendGrid verification key is the base64 public key SendGrid shows under "
            "Mail Settings > Event Webhook > Signature Verification"
        ) from exc
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(
        public_key.curve, ec.SECP256R1
    ):
        raise HookKeyError("a SendGrid verification key is an ECDSA P-256 public key")
    return public_key


def check_hook_key(kind: str, key: str) -> str:
    """``key`` as stored for a provider of ``kind``, or a HookKeyError naming what is wrong."""
    key = key.strip()
    if kind not in KEYED_KINDS:
        if kind == "ses":
            raise HookKeyError("Amazon SES needs no webhook key: SNS signs its messages")
        raise HookKeyError(f"a provider of kind {kind} has no webhook")
    if not key:
        raise HookKeyError("the webhook key is empty")
    if kind == "sendgrid":
        sendgrid_public_key(key)
    elif len(key) > 200 or not key.isprintable():
        raise HookKeyError("a Mailgun webhook signing key is printable text of at most 200 chars")
    return key
