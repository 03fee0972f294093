"""A provider's webhook while the database is away: 503 with Retry-After (providers retry on
it), nothing half-recorded, and the provider's retry recorded once the database is back."""

from __future__ import annotations

import asyncio
import json

import aiosmtplib
import httpx
import pytest
from intake_helpers import SendGridSigner, sendgrid_event

from mailpass.api.app import create_app


@pytest.fixture
async def hook_client(settings, postgres_proxy):  # type: ignore[no-untyped-def]
    proxy, url = postgres_proxy
    app = create_app(settings.model_copy(update={"database_url": url}))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        yield proxy, client


async def test_a_hook_in_a_database_outage_is_503_and_the_retry_is_recorded(
    hook_client, make_hooked
):
    proxy, client = hook_client
    signer = SendGridSigner()
    hooked = await make_hooked("sendgrid", signer.public_key)
    message_id = await hooked.send(client, "gone@example.com")
    body = json.dumps(
        [sendgrid_event("bounce", message_id, "gone@example.com", type="bounce", status="5.1.1")]
    ).encode()

    await proxy.cut()
    away = await client.post(hooked.path, content=body, headers=signer.headers(body))
    assert away.status_code == 503, away.text
    assert away.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert away.headers["retry-after"]

    await proxy.restore()
    await asyncio.sleep(0.1)
    started = asyncio.get_running_loop().time()
    retried = await client.post(hooked.path, content=body, headers=signer.headers(body))
    assert retried.status_code == 200, retried.text
    assert asyncio.get_running_loop().time() - started < 5
    assert retried.json()["data"]["recorded"] == 1
    # A connection of the pool's that the cut broke answers its next request 503 once (the
    # client retries, as on any 503); then the reads see what the retry recorded.
    for _ in range(5):
        read = await client.get(f"/api/v1/mail/status/{message_id}", headers=hooked.headers)
        if read.status_code != 503:
            break
    status = await hooked.status(client, message_id)
    assert status["message"]["status"] == "bounced"
    assert await hooked.suppressed(client) == {"gone@example.com": "hard_bounce"}


async def test_a_mailed_report_in_a_database_outage_is_451_and_taken_on_the_retry(
    settings, postgres_proxy, make_account, smtp_sink
):
    from intake_helpers import BOUNCE_DOMAIN, dsn

    from mailpass.intake.inbound import start_bounce_listener

    proxy, url = postgres_proxy
    app = create_app(
        settings.model_copy(update={"database_url": url, "bounce_domain": BOUNCE_DOMAIN})
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        listener = await start_bounce_listener(app.state.services.intake, "127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
        account = await make_account(sink=smtp_sink)
        sent = await client.post(
            "/api/v1/mail/send",
            json={"to": "gone@example.com", "subject": "Hi", "text": "Hello"},
            headers=account.headers,
        )
        message_id = sent.json()["data"]["message_id"]
        return_path = smtp_sink.messages[0].mail_from
        report = dsn(return_path, message_id, "gone@example.com", action="failed", status="5.1.1")

        async def deliver() -> aiosmtplib.SMTPResponse:
            async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=10) as smtp:
                await smtp.mail("")
                await smtp.rcpt(return_path)
                try:
                    return await smtp.data(report)
                except aiosmtplib.SMTPDataError as refused:
                    return aiosmtplib.SMTPResponse(refused.code, refused.message)

        await proxy.cut()
        assert (await deliver()).code == 451  # the sending server keeps it and tries again
        await proxy.restore()
        await asyncio.sleep(0.1)
        answers = [await deliver() for _ in range(3)]  # a pooled connection may fail once more
        assert 250 in [answer.code for answer in answers]
        listener.close()
        await listener.wait_closed()
        for _ in range(5):
            status = await client.get(f"/api/v1/mail/status/{message_id}", headers=account.headers)
            if status.status_code != 503:
                break
        assert status.json()["data"]["message"]["status"] == "bounced"
        bounces = [e for e in status.json()["data"]["events"] if e["event_type"] == "bounced"]
        assert len(bounces) == 1  # the retries after the first taken were duplicates
