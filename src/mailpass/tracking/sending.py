"""Turning tracking on for an outgoing message: its html gets a pixel and tracked links."""

from __future__ import annotations

from dataclasses import replace

from mailpass.config import Settings
from mailpass.core.outgoing import OutgoingMessage
from mailpass.providers.models import Provider
from mailpass.tracking.rewrite import RewrittenHtml, rewrite_html
from mailpass.tracking.tokens import TokenSigner, new_tracking_id

__all__ = ["CLICK_PATH", "OPEN_PATH", "MessageTracker", "tracking_wanted"]

# The routes' paths (see ``mailpass.api.tracking``), below MAILPASS_PUBLIC_URL.
OPEN_PATH = "/t/o/{token}.gif"
CLICK_PATH = "/t/c/{token}"


def tracking_wanted(
    provider: Provider | None, track_opens: bool | None, track_clicks: bool | None
) -> tuple[bool, bool]:
    """The request's ``track_opens`` / ``track_clicks`` where given, else the provider's."""
    opens = track_opens if track_opens is not None else bool(provider and provider.track_opens)
    clicks = track_clicks if track_clicks is not None else bool(provider and provider.track_clicks)
    return opens, clicks


class MessageTracker:
    def __init__(self, settings: Settings, signer: TokenSigner) -> None:
        self.base_url = settings.public_url.rstrip("/")
        self.signer = signer

    def pixel_url(self, tracking_id: str) -> str:
        return self.base_url + OPEN_PATH.format(token=self.signer.open_token(tracking_id))

    def click_url(self, tracking_id: str, link_index: int) -> str:
        return self.base_url + CLICK_PATH.format(
            token=self.signer.click_token(tracking_id, link_index)
        )

    def apply(
        self,
        outgoing: OutgoingMessage,
        provider: Provider | None,
        *,
        track_opens: bool | None,
        track_clicks: bool | None,
    ) -> OutgoingMessage:
        """The message with its html rewritten for tracking, or as it is when tracking is off,
        or when there is no html, or nothing in it to track."""
        if not outgoing.html:
            return outgoing
        tracked = self.rewrite(
            outgoing.html, provider, track_opens=track_opens, track_clicks=track_clicks
        )
        if tracked is None:
            return outgoing
        tracking_id, rewritten = tracked
        return replace(
            outgoing,
            html=rewritten.html,
            tracking_id=tracking_id,
            tracked_links=rewritten.links,
        )

    def rewrite(
        self,
        html: str,
        provider: Provider | None,
        *,
        track_opens: bool | None,
        track_clicks: bool | None,
    ) -> tuple[str, RewrittenHtml] | None:
        """``html`` with a pixel and tracked links, under a new tracking id; None when tracking
        is off or there is nothing in it to track."""
        opens, clicks = tracking_wanted(provider, track_opens, track_clicks)
        if not (opens or clicks):
            return None
        tracking_id = new_tracking_id()
        rewritten = rewrite_html(
            html,
            pixel_src=self.pixel_url(tracking_id) if opens else None,
            click_url=(lambda index: self.click_url(tracking_id, index)) if clicks else None,
        )
        if not rewritten.links and not rewritten.pixel_added:
            return None
        return tracking_id, rewritten
