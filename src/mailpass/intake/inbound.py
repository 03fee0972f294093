"""The bounce listener: an SMTP server (aiosmtpd) for the bounce domain's MX, taking the
delivery status notifications and abuse reports that come back to MailPass's return paths.

It takes mail only for addresses at ``MAILPASS_BOUNCE_DOMAIN`` (550 for any other, so it never
relays), records what a report says (``IntakeService.receive_report``), and drops anything
else after logging it: nothing that arrives is stored as a message. While the database is away
it answers 451, and the sending server tries again later.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from mailpass.intake.service import IntakeService
from mailpass.storage.unavailable import database_unavailable

__all__ = ["MAX_REPORT_BYTES", "BounceHandler", "start_bounce_listener"]

log = logging.getLogger("mailpass.bounces")

MAX_REPORT_BYTES = 10 * 1024 * 1024  # a report quotes its mail, attachments and all
MAX_RECIPIENTS = 10  # a report is addressed to one return path


class BounceHandler:
    """aiosmtpd's handler: which recipients are taken, and what becomes of the data."""

    def __init__(self, intake: IntakeService) -> None:
        self.intake = intake

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if not self.intake.return_paths.is_ours(address):
            return "550 5.7.1 not a bounce address of this server"
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 too many recipients"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        try:
            intake = await self.intake.receive_report(list(envelope.rcpt_tos), content)
        except Exception as exc:
            reason = database_unavailable(exc)
            if reason is None:
                log.exception("a report from %s could not be recorded", envelope.mail_from)
                return "451 4.3.0 the report could not be recorded; try again later"
            log.warning("the database is unavailable (%s): report deferred", reason)
            return "451 4.3.0 try again later"
        if intake is None:
            log.info(
                "dropped mail from %s to %s: neither a delivery status notification nor an "
                "abuse report",
                envelope.mail_from,
                ", ".join(envelope.rcpt_tos),
            )
        else:
            log.info(
                "report from %s: %d recorded, %d unmatched, %d ignored, %d duplicates",
                envelope.mail_from,
                intake.recorded,
                intake.unmatched,
                intake.ignored,
                intake.duplicates,
            )
        return "250 2.0.0 OK"


async def start_bounce_listener(
    intake: IntakeService, host: str, port: int, *, reuse_port: bool = False
) -> asyncio.Server:
    """Listen for reports on ``host:port`` (with ``reuse_port``, beside the other processes of
    ``serve --processes``, as the HTTP port is)."""
    if intake.return_paths.domain is None:
        raise ValueError("the bounce listener needs MAILPASS_BOUNCE_DOMAIN")
    handler = BounceHandler(intake)
    loop = asyncio.get_running_loop()
    hostname = intake.return_paths.domain
    return await loop.create_server(
        lambda: SMTP(
            handler,
            data_size_limit=MAX_REPORT_BYTES,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=hostname,
            ident="MailPass bounces",
        ),
        host,
        port,
        reuse_port=reuse_port or None,
    )
