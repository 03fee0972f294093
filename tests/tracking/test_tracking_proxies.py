"""Behind a trusted proxy, a hit's address is the client's as the proxy names it."""

from __future__ import annotations

import pytest
from tracking_helpers import BROWSER, TRACK_BOTH, html_of, read_html, tracking_path


@pytest.fixture
def settings(settings):
    settings.trusted_proxies = "127.0.0.1, 10.0.0.0/8"  # the test client connects from 127.0.0.1
    return settings


@pytest.mark.parametrize(
    ("forwarded_for", "recorded"),
    [
        (None, "127.0.0.1"),
        ("198.51.100.7", "198.51.100.7"),
        # The client wrote 6.6.6.6 itself; a trusted load balancer (10.2.3.4) added the real one.
        ("6.6.6.6, 198.51.100.7, 10.2.3.4", "198.51.100.7"),
        ("2001:db8::77", "2001:db8::77"),
        ("not-an-address", "127.0.0.1"),
    ],
)
async def test_x_forwarded_for_from_a_trusted_proxy_names_the_client(
    app_client, make_account, smtp_sink, send, status_of, forwarded_for, recorded
):
    account = await make_account(sink=smtp_sink, provider_options=TRACK_BOTH)
    message_id = await send(account, to="user@example.com", subject="Hi", html="<p>Hi</p>")
    pixel = tracking_path(read_html(html_of(smtp_sink.messages[0])).images[0])
    headers = {"User-Agent": BROWSER}
    if forwarded_for:
        headers["X-Forwarded-For"] = forwarded_for
    assert (await app_client.get(pixel, headers=headers)).status_code == 200
    (event,) = (await status_of(account, message_id))["events"]
    assert event["ip_address"] == recorded
