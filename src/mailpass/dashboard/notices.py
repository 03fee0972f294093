"""One-line confirmations shown after a redirect (``?notice=…``). Only these fixed texts are
ever shown, so a crafted link cannot put words on the page."""

from __future__ import annotations

from starlette.requests import Request

__all__ = ["NOTICES", "notice_of"]

NOTICES = {
    "provider-added": "Provider added.",
    "provider-saved": "Provider saved.",
    "provider-default": "Default provider changed.",
    "provider-deleted": "Provider deleted.",
    "webhook-key-saved": "Webhook key saved: the provider's events are checked with it.",
    "webhook-key-removed": "Webhook key removed: its events are refused until one is set.",
    "key-revoked": "API key revoked. Requests with it are refused from now on.",
    "message-cancelled": "Message cancelled: it will not be sent.",
    "message-not-cancellable": "The message had left the queue already: it was not cancelled.",
    "suppression-added": "Address suppressed: no mail goes to it from now on.",
    "suppression-exists": "That address was suppressed already.",
    "suppression-removed": "Address taken off the list: mail goes to it again.",
    "suppression-missing": "That address was not on the list.",
    "webhook-removed": "Endpoint removed: its deliveries not yet made are dropped.",
    "webhook-test-queued": "Test event queued: it appears below once the worker has sent it.",
    "webhook-enabled": "Endpoint on again: new events are delivered to it.",
    "domain-added": "Domain added: publish its records, then check them.",
    "domain-verified": "Checked: the domain is verified, direct providers send from it.",
    "domain-not-verified": "Checked: some required records are not there yet (see below).",
    "domain-rotated": "New DKIM key made: publish its record and check; it signs from then on.",
    "domain-key-removed": "DKIM key removed: its record can go from the DNS.",
    "domain-removed": "Domain removed.",
}


def notice_of(request: Request) -> str | None:
    return NOTICES.get(request.query_params.get("notice", ""))
