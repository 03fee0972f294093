"""Dashboard > SMTP relay, and the relay's messages in the log marked as such."""

from __future__ import annotations

from mailpass.accounts.keys import hash_key
from mailpass.relay.service import Sender


def flat(page: str) -> str:
    return " ".join(page.split())


async def test_the_smtp_page_gives_the_settings_and_examples(signed_in, app_client):
    settings = app_client.app.state.services.settings
    settings.smtp_hostname = "smtp.shop.example"
    browser, _account = await signed_in()
    page = flat((await browser.get("/dashboard/smtp")).text)
    assert "Host</dt><dd><code>smtp.shop.example</code>" in page
    assert "<code>587</code> with STARTTLS" in page
    assert "User name</dt><dd><code>mailpass</code>" in page
    for example in ("EMAIL_HOST_USER", "MAIL_MAILER=smtp", "smtp_settings", "createTransport"):
        assert example in page
    assert "WordPress" in page
    assert "has no certificate for the relay" in page  # none is configured here
    assert 'href="/dashboard/smtp" aria-current="page"' in page


async def test_the_log_marks_what_came_through_the_relay(signed_in, app_client, smtp_sink):
    browser, account = await signed_in(sink=smtp_sink)
    body = {"to": "api@example.com", "subject": "By the API", "text": "Hi"}
    assert (
        await app_client.post("/api/v1/mail/send", json=body, headers=account.headers)
    ).is_success
    relay = app_client.app.state.services.relay()
    key, sending = await relay.start_message(Sender(hash_key(account.key), 0), "app@example.com")
    accepted = await relay.accept(
        key,
        sending,
        ["smtp@example.com"],
        b"From: app@example.com\r\nTo: smtp@example.com\r\nSubject: By SMTP\r\n\r\nHi\r\n",
        "Received: from test",
    )
    log = flat((await browser.get("/dashboard/messages")).text)
    rows = log.split("<tr data-message=")[1:]
    by_subject = {("By SMTP" in row): row for row in rows}
    assert '<td class="source">smtp</td>' in by_subject[True]
    assert '<td class="source">api</td>' in by_subject[False]
    link = by_subject[True].split('<a href="', 1)[1].split('"', 1)[0]
    detail = flat((await browser.get(link)).text)
    assert "through the SMTP relay" in detail
    assert accepted.message_id.strip("<>") in detail or accepted.message_id in detail
