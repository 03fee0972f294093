"""The bounce listener as users run it: inside `mailpass serve --bounce-smtp-port` (two
processes sharing the port) and alone as `mailpass bounces`."""

from __future__ import annotations

import asyncio

import aiosmtplib
import httpx
import pytest
from intake_helpers import BOUNCE_DOMAIN, dsn, send_report

from process_fixtures import free_port, running, wait_healthy

pytestmark = pytest.mark.slow


async def wait_listening(port: int, process: asyncio.subprocess.Process) -> None:
    for _ in range(200):
        if process.returncode is not None:
            stderr = await process.stderr.read() if process.stderr else b""
            pytest.fail(f"exited early: {stderr.decode()}")
        try:
            async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=2) as client:
                await client.noop()
                return
        except (OSError, aiosmtplib.SMTPException):
            await asyncio.sleep(0.1)
    pytest.fail("the bounce listener did not start")


async def bounced(client: httpx.AsyncClient, account, message_id: str) -> str:  # type: ignore[no-untyped-def]
    answer = await client.get(f"/api/v1/mail/status/{message_id}", headers=account.headers)
    return str(answer.json()["data"]["message"]["status"])


async def test_serve_takes_bounces_on_its_smtp_port(cli_env, make_account, smtp_sink):
    port, bounce_port = free_port(), free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {**cli_env, "MAILPASS_BOUNCE_DOMAIN": BOUNCE_DOMAIN}
    account = await make_account(sink=smtp_sink)
    args = ("serve", "--port", str(port), "--bounce-smtp-port", str(bounce_port))
    async with running(*args, "--processes", "2", env=env) as server:
        await wait_healthy(base_url, server)
        await wait_listening(bounce_port, server)
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            sent = await client.post(
                "/api/v1/mail/send",
                json={"to": "gone@example.com", "subject": "Hi", "text": "Hello"},
                headers=account.headers,
            )
            assert sent.status_code == 200, sent.text
            message_id = sent.json()["data"]["message_id"]
            return_path = smtp_sink.messages[0].mail_from
            assert return_path.endswith("@" + BOUNCE_DOMAIN)
            report = dsn(
                return_path, message_id, "gone@example.com", action="failed", status="5.1.1"
            )
            await send_report(bounce_port, return_path, report)
            assert await bounced(client, account, message_id) == "bounced"


async def test_bounces_runs_the_listener_alone(
    cli_env, make_account, smtp_sink, app_client, mailpass
):
    refused = await mailpass("bounces", "--port", str(free_port()))
    assert refused.code == 2
    assert "MAILPASS_BOUNCE_DOMAIN" in refused.err

    account = await make_account(sink=smtp_sink)
    sent = await app_client.post(
        "/api/v1/mail/send",
        json={"to": "gone@example.com", "subject": "Hi", "text": "Hello"},
        headers=account.headers,
    )
    message_id = sent.json()["data"]["message_id"]
    # The app under test has no bounce domain: its mail goes out from the sender; the report
    # is matched by the Message-ID it quotes.
    bounce_port = free_port()
    env = {**cli_env, "MAILPASS_BOUNCE_DOMAIN": BOUNCE_DOMAIN}
    async with running("bounces", "--port", str(bounce_port), env=env) as listener:
        await wait_listening(bounce_port, listener)
        to = f"postmaster@{BOUNCE_DOMAIN}"
        report = dsn(to, message_id, "gone@example.com", action="failed", status="5.1.1")
        await send_report(bounce_port, to, report)
    assert listener.returncode == 0
    assert await bounced(app_client, account, message_id) == "bounced"
