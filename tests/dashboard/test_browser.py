"""The dashboard in a real browser (Debian's headless Chromium, driven by Playwright) against a
real server on a real port, a real SMTP server and a real database.

With ``MAILPASS_SCREENSHOT_DIR`` set, the walk also saves a screenshot of each page there
(``scripts/screenshots`` does that for ``docs/screenshots/``).
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
import uvicorn
from playwright.async_api import Page, async_playwright, expect

from mailpass.accounts import service as accounts
from mailpass.api.app import create_app
from mailpass.clock import utcnow
from mailpass.server import uvicorn_config
from mailpass.storage.tables import messages
from process_fixtures import free_port

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
SERVER_START_TIMEOUT = 20.0  # seconds
EMAIL = "owner@example.com"
PASSWORD = "correct horse battery staple"
SMTP_SECRET = "relay-secret"  # the test SMTP server's password
INVOICE_NAME = "Rechnung März.pdf"
INVOICE = b"%PDF-1.7\n" + bytes(range(256)) * 64
VIEWPORT = {"width": 1280, "height": 860}


@pytest.fixture
def live_server(settings, database) -> Iterator[str]:
    """``mailpass serve`` as uvicorn runs it, with the queue worker, on a thread of its own."""
    port = free_port()
    app = create_app(settings, worker=True)
    server = uvicorn.Server(uvicorn_config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="live-server", daemon=True)
    thread.start()
    deadline = SERVER_START_TIMEOUT
    while not server.started and deadline > 0 and thread.is_alive():
        threading.Event().wait(0.05)
        deadline -= 0.05
    assert server.started, "the server did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(SERVER_START_TIMEOUT)


@pytest.fixture
async def page(live_server) -> AsyncIterator[Page]:
    if not CHROMIUM.exists():
        pytest.fail(
            "Debian's chromium is missing: scripts/test installs it (apt-get install chromium)"
        )
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), chromium_sandbox=False, args=CHROMIUM_ARGS
        )
        context = await browser.new_context(base_url=live_server, viewport=VIEWPORT)
        await context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server)
        try:
            yield await context.new_page()
        finally:
            await browser.close()


class Screenshots:
    def __init__(self) -> None:
        target = os.environ.get("MAILPASS_SCREENSHOT_DIR")
        self.directory = Path(target) if target else None

    async def take(self, page: Page, name: str) -> None:
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            # A viewport as tall as the page rather than full_page=True: Chromium leaves the
            # sandboxed frame blank in a stitched full-page capture.
            height = await page.evaluate("document.documentElement.scrollHeight")
            await page.set_viewport_size({"width": VIEWPORT["width"], "height": height})
            await page.wait_for_timeout(300)
            await page.screenshot(path=str(self.directory / f"{name}.png"))
            await page.set_viewport_size(VIEWPORT)


async def test_the_whole_dashboard_in_a_browser(
    page, live_server, make_smtp_sink, make_account, database
):
    shots = Screenshots()
    sink = await make_smtp_sink(tls_mode="starttls", auth={"app": SMTP_SECRET})
    await accounts.create_user(database, EMAIL, PASSWORD)

    # Sign in: the dashboard sends a signed-out browser to the sign-in page.
    await page.goto("/dashboard/")
    await expect(page).to_have_url(re.compile(r"/dashboard/sign-in\?next="))
    await page.get_by_label("E-mail", exact=True).fill(EMAIL)
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await shots.take(page, "sign-in")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Overview")).to_be_visible()

    # A first provider from the SES preset: it becomes the default, being the first.
    await page.get_by_role("link", name="SMTP settings").click()
    await page.get_by_role("link", name="Amazon SES").click()
    await page.get_by_label("Name", exact=True).fill("ses-eu")
    await page.get_by_label("Region", exact=True).fill("eu-west-1")
    await page.get_by_label("SMTP user name").fill("AKIAEXAMPLE")
    await page.get_by_label("SMTP password").fill("ses-secret")
    await page.get_by_role("button", name="Add provider").click()
    await expect(page.get_by_text("Provider added.")).to_be_visible()

    # The provider that matters: the real SMTP server, over STARTTLS with AUTH.
    await page.get_by_role("link", name="SMTP server").click()
    await page.get_by_label("Name", exact=True).fill("local-relay")
    await page.get_by_label("Host", exact=True).fill("localhost")
    await page.get_by_label("Port", exact=True).fill(str(sink.port))
    await page.get_by_label("Security").select_option("starttls")
    await page.get_by_label("User name", exact=True).fill("app")
    await page.get_by_label("Password").fill(SMTP_SECRET)
    await page.get_by_label("From e-mail").fill("support@shop.example")
    await page.get_by_label("From name").fill("Shop")
    await page.get_by_label("Per hour").fill("100")
    await page.get_by_label("Per day").fill("1000")
    await shots.take(page, "provider-form")
    await page.get_by_role("button", name="Add provider").click()
    relay = page.locator('tr[data-provider="local-relay"]')
    await expect(relay).to_contain_text(f"localhost:{sink.port}")
    await expect(relay.locator(".badge.default")).to_have_count(0)
    assert SMTP_SECRET not in await page.content()

    # Test it: the server's replies, through TLS and authentication.
    await relay.get_by_role("button", name="Test connection").click()
    await expect(page.locator("#test-result")).to_contain_text(
        "Connected, secured and authenticated"
    )
    transcript = page.locator("pre.transcript")
    await expect(transcript).to_contain_text("S: 220 sink.mailpass.test")
    await expect(transcript).to_contain_text("C: STARTTLS")
    await expect(transcript).to_contain_text("S: 235")
    await shots.take(page, "provider-test")

    # Make it the default.
    await page.get_by_role("button", name="Make default").click()
    await expect(page.get_by_text("Default provider changed.")).to_be_visible()
    await expect(relay.locator(".badge.default")).to_have_text("default")
    await expect(page.locator('tr[data-provider="ses-eu"] .badge.default')).to_have_count(0)

    # An API key, shown once, with a working copy button.
    await page.get_by_role("link", name="API keys").click()
    await page.get_by_label("Name", exact=True).fill("shop backend")
    await page.get_by_role("button", name="Create key").click()
    key = await page.locator("#new-key").input_value()
    assert re.fullmatch(r"mp_live_[A-Za-z0-9_-]{32}", key)
    await page.get_by_role("button", name="Copy").click()
    await expect(page.get_by_text("Copied")).to_be_visible()
    assert await page.evaluate("navigator.clipboard.readText()") == key
    await shots.take(page, "keys")

    # The key works through the API: the mail reaches the SMTP server through the new default.
    async with httpx.AsyncClient(base_url=live_server) as api:
        sent = await api.post(
            "/api/v1/mail/send",
            headers={"Authorization": f"Bearer {key}"},
            json={
                "to": "customer@example.com",
                "subject": "Order <42> confirmed",
                "html": "<h1>Thanks for your order</h1><p>It ships tomorrow.</p>",
                "text": "Thanks for your order. It ships tomorrow.",
                "tags": ["order"],
                "track_opens": True,
                "attachments": [
                    {"filename": INVOICE_NAME, "content": base64.b64encode(INVOICE).decode()}
                ],
            },
        )
        assert sent.status_code == 200, sent.text
        batch = await api.post(
            "/api/v1/mail/send-batch",
            headers={"Authorization": f"Bearer {key}"},
            json={
                "messages": [
                    {"to": f"reader{n}@example.com", "subject": f"Newsletter #{n}", "text": "x"}
                    for n in range(3)
                ],
                "tags": ["newsletter"],
            },
        )
        assert batch.json()["data"]["queued"] == 3
    received = await sink.wait_for(4, timeout=15)
    assert all(message.tls and message.auth_username == "app" for message in received)
    message_id = sent.json()["data"]["message_id"]

    # Its open, the real way: the reader's mail client fetches the pixel in the delivered html.
    # (A hit within seconds of delivery would be marked as a link scanner's, so wait that long.)
    delivered = next(m for m in received if m.rcpt_tos == ["customer@example.com"])
    html = delivered.message.get_body(preferencelist=("html",)).get_content()
    pixel_path = re.search(r'src="https?://[^/"]+(/t/o/[^"]+\.gif)"', html).group(1)
    await asyncio.sleep(5.5)
    async with httpx.AsyncClient(base_url=live_server) as reader:
        pixel = await reader.get(
            pixel_path, headers={"User-Agent": "Mozilla/5.0 (Macintosh) Thunderbird/128.0"}
        )
    assert pixel.status_code == 200
    assert pixel.headers["content-type"] == "image/gif"

    await page.get_by_role("link", name="API keys").click()  # not a reload: that re-posts
    await expect(page.locator("tbody tr")).to_have_count(1)
    await expect(page.locator("#new-key")).to_have_count(0)  # shown once, never again
    await expect(page.locator(f'tr[data-key="{key[:12]}"]')).not_to_contain_text("never")

    # Find the message in the log, then its open event.
    await page.get_by_role("link", name="Messages").click()
    await page.get_by_label("Tag").fill("order")
    await page.get_by_role("button", name="Filter").click()
    row = page.locator(f'tr[data-message="{message_id}"]')
    await expect(row.locator("td.opens")).to_have_text("1")
    await expect(page.locator("tbody tr")).to_have_count(1)
    await page.get_by_label("Tag").fill("")
    await page.get_by_role("button", name="Filter").click()
    await expect(page.locator("tbody tr")).to_have_count(4)
    await shots.take(page, "messages")
    await row.get_by_role("link", name="Order <42> confirmed").click()
    await expect(page.get_by_role("heading", name="Order <42> confirmed")).to_be_visible()
    await expect(page.locator(".timeline .event-open")).to_contain_text("127.0.0.1")
    preview = page.frame_locator("iframe.preview")
    await expect(preview.get_by_role("heading", name="Thanks for your order")).to_be_visible()
    # Its invoice, listed and downloaded as the very bytes that were sent.
    await expect(page.locator("table.attachments")).to_contain_text("application/pdf")
    async with page.expect_download() as download_info:
        await page.get_by_role("link", name=INVOICE_NAME).click()
    download = await download_info.value
    assert download.suggested_filename == INVOICE_NAME
    assert Path(await download.path()).read_bytes() == INVOICE
    await shots.take(page, "message")

    await page.get_by_role("link", name="Overview").click()
    await expect(page.locator(".stat.series-sent .number")).to_have_text("4")
    await expect(page.locator(".stat.series-opened .number")).to_have_text("1")
    await shots.take(page, "overview")
    await page.get_by_role("link", name="SMTP settings").click()
    await expect(relay).to_contain_text("4 / 100 last hour")
    await shots.take(page, "providers")

    # A webhook endpoint: its secret shown once, then a test event queued for it.
    await page.get_by_role("link", name="Webhooks").click()
    await page.get_by_label("URL").fill("https://app.example.com/hooks/mailpass")
    await page.get_by_label("bounced").check()
    await page.get_by_role("button", name="Add endpoint").click()
    await expect(page.get_by_label("Signing secret")).to_have_value(re.compile(r"^whsec_"))
    endpoint_row = page.locator("table.webhooks tbody tr")
    await expect(endpoint_row).to_contain_text("https://app.example.com/hooks/mailpass")
    await expect(endpoint_row).to_contain_text("bounced")
    await shots.take(page, "webhooks")
    await endpoint_row.get_by_role("button", name="Send test event").click()
    await expect(page.get_by_text("Test event queued")).to_be_visible()
    await expect(page.locator("table.deliveries")).to_contain_text("test")
    await page.get_by_role("link", name="Webhooks").first.click()
    await expect(page.get_by_label("Signing secret")).to_have_count(0)  # shown once, never again

    # Revoke the key: the API refuses it from then on.
    await page.get_by_role("link", name="API keys").click()
    await page.locator(f'tr[data-key="{key[:12]}"]').get_by_role("button", name="Revoke").click()
    await expect(page.get_by_text("API key revoked.")).to_be_visible()
    async with httpx.AsyncClient(base_url=live_server) as api:
        refused = await api.post(
            "/api/v1/mail/send",
            headers={"Authorization": f"Bearer {key}"},
            json={"to": "customer@example.com", "subject": "again", "text": "x"},
        )
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "UNAUTHORIZED"

    # Another account's message is not found, exactly like one that does not exist.
    other = await make_account("other@example.com", sink=sink)
    async with httpx.AsyncClient(base_url=live_server) as api:
        theirs = await api.post(
            "/api/v1/mail/send",
            headers=other.headers,
            json={"to": "x@example.com", "subject": "not yours", "text": "x"},
        )
    async with database.read() as connection:
        their_pk = (
            await connection.execute(
                sa.select(messages.c.id).where(
                    messages.c.message_id == theirs.json()["data"]["message_id"]
                )
            )
        ).scalar_one()
    answer = await page.goto(f"/dashboard/messages/{their_pk}")
    assert answer is not None
    assert answer.status == 404
    await expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    assert "not yours" not in await page.content()

    # Signing out ends it.
    await page.get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(re.compile(r"/dashboard/sign-in$"))
    await page.goto("/dashboard/keys")
    await expect(page).to_have_url(re.compile(r"/dashboard/sign-in\?next="))


async def test_scripts_injected_through_user_data_never_run(page, database, make_account):
    await accounts.create_user(database, EMAIL, PASSWORD)
    user = await accounts.require_user(database, EMAIL)
    async with database.transaction() as connection:
        await connection.execute(
            messages.insert().values(
                user_id=user.id,
                message_id="<xss.1@shop.example>",
                from_email="a@shop.example",
                to_email="<script>window.pwned=1</script>@example.com",
                cc=[],
                bcc=[],
                subject='<img src=x onerror="window.pwned=1">',
                html="<script>parent.pwned=1; window.pwned=1</script><p>body</p>",
                tags=["<b>"],
                user_metadata={},
                status="sent",
                is_test=False,
                created_at=utcnow(),
            )
        )
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto("/dashboard/sign-in")
    await page.get_by_label("E-mail", exact=True).fill(EMAIL)
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.goto("/dashboard/messages")
    await expect(
        page.get_by_role("link", name='<img src=x onerror="window.pwned=1">')
    ).to_be_visible()
    await page.get_by_role("link", name='<img src=x onerror="window.pwned=1">').click()
    await expect(page.frame_locator("iframe.preview").get_by_text("body")).to_be_visible()
    await asyncio.sleep(0.2)
    assert await page.evaluate("window.pwned") is None
    assert errors == []
