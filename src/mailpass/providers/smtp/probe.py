"""The provider's "test connection": connect, TLS and AUTH as configured, then QUIT."""

from __future__ import annotations

import asyncio

from mailpass.providers.smtp.client import open_client, quit_client
from mailpass.providers.smtp.endpoint import SmtpEndpoint, build_tls_context
from mailpass.providers.smtp.errors import ProbeError, SmtpFailure

__all__ = ["probe"]


async def probe(endpoint: SmtpEndpoint) -> list[str]:
    """Connect, EHLO, STARTTLS and AUTH as configured, QUIT; return the transcript.

    Lines read ``"S: 250-mx.example"`` / ``"C: EHLO myhost"``; credentials never appear.
    Raises ``ProbeError`` with a one-line reason and the transcript up to the failure.
    """
    transcript: list[str] = []
    try:
        tls_context = None
        if endpoint.security != "none":
            tls_context = await asyncio.to_thread(build_tls_context, endpoint)
        client = await open_client(endpoint, tls_context, endpoint.local_hostname, transcript)
    except SmtpFailure as failure:
        raise ProbeError(failure.summary, transcript) from failure.__cause__
    await quit_client(client)
    return transcript
