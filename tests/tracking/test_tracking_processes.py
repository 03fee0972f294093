"""Tracking with MailPass as users run it: `mailpass serve` behind a proxy, and the CLI."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from tracking_helpers import BROWSER, html_of, read_html

from process_fixtures import free_port, running, wait_healthy

pytestmark = pytest.mark.slow

PAGE = '<html><body><p>Hi</p><a href="https://shop.example/p?a=1&amp;b=%C3%A9">Go</a></body></html>'


async def test_pixel_and_click_through_a_real_server_behind_a_trusted_proxy(
    cli_env, make_account, smtp_sink, delivered_long_ago
):
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {**cli_env, "MAILPASS_PUBLIC_URL": base_url, "MAILPASS_TRUSTED_PROXIES": "127.0.0.1"}
    account = await make_account(
        sink=smtp_sink, provider_options={"track_opens": True, "track_clicks": True}
    )
    async with running("serve", "--port", str(port), "--no-worker", env=env) as server:
        await wait_healthy(base_url, server)
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            sent = await client.post(
                "/api/v1/mail/send",
                json={"to": "user@example.com", "subject": "Hi", "html": PAGE},
                headers=account.headers,
            )
            assert sent.status_code == 200, sent.text
            message_id = sent.json()["data"]["message_id"]
            await delivered_long_ago(message_id)
            found = read_html(html_of(smtp_sink.messages[0]))
            assert found.images[0].startswith(base_url + "/t/o/")
            assert found.hrefs[0].startswith(base_url + "/t/c/")

            client_headers = {"User-Agent": BROWSER, "X-Forwarded-For": "203.0.113.50"}
            pixel = await client.get(found.images[0], headers=client_headers)
            assert pixel.status_code == 200
            assert pixel.headers["content-type"] == "image/gif"
            assert pixel.content.startswith(b"GIF89a")
            click = await client.get(
                found.hrefs[0] + "?to=https://evil.example", headers=client_headers
            )
            assert click.status_code == 302
            assert click.headers["location"] == "https://shop.example/p?a=1&b=%C3%A9"
            forged = await client.get(found.hrefs[0][:-2] + "xx", headers=client_headers)
            assert forged.status_code == 404
            assert "location" not in forged.headers

            # The open is written just after its image is answered: give it a moment.
            for _ in range(100):
                status = await client.get(
                    f"/api/v1/mail/status/{message_id}", headers=account.headers
                )
                events = status.json()["data"]["events"]
                if len(events) >= 3:
                    break
                await asyncio.sleep(0.05)
    # Its story: sent (told by its row), then the open and the click in the seed's shape.
    sent, *hits = events
    assert (sent["event_type"], sent["attempt"]) == ("sent", 1)
    assert sent["smtp_reply"].startswith("250")
    assert [(e["event_type"], e["ip_address"], e["user_agent"]) for e in hits] == [
        ("open", "203.0.113.50", BROWSER),
        ("click", "203.0.113.50", BROWSER),
    ]
    assert set(hits[0]) == {
        "event_type",
        "ip_address",
        "user_agent",
        "url",
        "machine",
        "machine_reason",
        "created_at",
    }


async def test_cli_turns_tracking_on_and_off(mailpass, app_client, smtp_sink):
    assert (await mailpass("users", "create", "owner@example.com")).code == 0
    added = await mailpass(
        "providers", "add", "--user", "owner@example.com", "--name", "relay",
        "--host", "127.0.0.1", "--port", str(smtp_sink.port), "--security", "none",
        "--from-email", "shop@shop.example", "--track-opens",
    )  # fmt: skip
    assert added.code == 0, added.err
    key = (await mailpass("keys", "create", "--user", "owner@example.com")).out.strip()
    headers = {"Authorization": f"Bearer {key}"}

    async def send_and_read():
        response = await app_client.post(
            "/api/v1/mail/send",
            json={"to": "user@example.com", "subject": "Hi", "html": PAGE},
            headers=headers,
        )
        assert response.status_code == 200, response.text
        return read_html(html_of(smtp_sink.messages[-1]))

    first = await send_and_read()
    assert len(first.images) == 1
    assert first.hrefs == ["https://shop.example/p?a=1&b=%C3%A9"]

    changed = await mailpass(
        "providers", "set-tracking", "relay", "--opens", "off", "--clicks", "on"
    )
    assert changed.code == 0, changed.err
    assert changed.out == ""
    assert "open tracking off, click tracking on" in changed.err
    second = await send_and_read()
    assert second.images == []
    assert "/t/c/" in second.hrefs[0]

    nothing = await mailpass("providers", "set-tracking", "relay")
    assert nothing.code != 0
    assert "--opens" in nothing.err
    unknown = await mailpass("providers", "set-tracking", "nope", "--opens", "on")
    assert unknown.code != 0
    assert "no single provider" in unknown.err
