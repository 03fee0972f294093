"""Recording pixel and click hits as events on their message."""

from __future__ import annotations

import logging
from datetime import timedelta

from mailpass.config import Settings
from mailpass.core.statuses import EventType
from mailpass.storage.database import Connection, Database
from mailpass.tracking import repository
from mailpass.tracking.machines import BURST_WINDOW, burst_reason, machine_reason
from mailpass.tracking.recorder import Hit, OpenRecorder, enqueue_hit_webhooks, event_row
from mailpass.tracking.rewrite import normalize_link
from mailpass.tracking.tokens import TokenSigner, TrackingToken

__all__ = ["TrackingService"]

log = logging.getLogger("mailpass.tracking")


class TrackingService:
    def __init__(self, settings: Settings, database: Database, signer: TokenSigner) -> None:
        self.database = database
        self.signer = signer
        self.trusted_proxies = settings.trusted_proxy_networks
        self.opens = OpenRecorder(database)

    def verify(self, token: str) -> TrackingToken | None:
        return self.signer.verify(token)

    async def record_open(self, token: TrackingToken, hit: Hit) -> None:
        await self.opens.record(token.tracking_id, hit)

    async def record_click(self, token: TrackingToken, hit: Hit) -> str | None:
        """The URL to redirect to, with the click recorded; None when the token leads nowhere.

        The URL comes only from the message's own list of tracked links.
        """
        assert token.link_index is not None
        async with self.database.read() as connection:
            target = await repository.find_click_target(connection, token.tracking_id)
        if target is None or token.link_index >= len(target.links):
            return None
        url = target.links[token.link_index]
        if normalize_link(url) != url:
            return None  # only ever an http(s) URL, even if the stored list was tampered with
        reason = machine_reason(
            method=hit.method,
            user_agent=hit.user_agent,
            hit_at=hit.at,
            delivered_at=target.delivered_at,
        )
        try:
            async with self.database.transaction() as connection:
                await self._record_click(connection, target, hit, url, reason)
        except Exception:
            # The reader still gets where the link leads; the click is lost and logged.
            log.exception("could not record a click on message %s", target.message_pk)
        return url

    async def _record_click(
        self,
        connection: Connection,
        target: repository.ClickTarget,
        hit: Hit,
        url: str,
        reason: str | None,
    ) -> None:
        row = event_row(target.message_pk, EventType.CLICK, hit, reason, url)
        await repository.insert_event(connection, row)
        await enqueue_hit_webhooks(connection, [(target, row)])
        recent = await repository.recent_clicks(
            connection, target.message_pk, hit.at - timedelta(seconds=BURST_WINDOW)
        )
        burst = burst_reason((click.url or "" for click in recent), len(target.links))
        if burst is not None:
            unmarked = [click.event_id for click in recent if not click.is_machine]
            if unmarked:
                await repository.mark_machine(connection, unmarked, burst)
                await repository.refresh_first_clicked(connection, target.message_pk)
        elif reason is None and target.first_clicked_at is None:
            await repository.set_first_clicked(connection, target.message_pk, hit.at)

    async def close(self) -> None:
        await self.opens.flush()  # the opens already taken
