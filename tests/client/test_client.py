"""The SDK's ``Client`` against a real running server and a real SMTP server."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

import mailpass
from mailpass import (
    Client,
    ForbiddenError,
    HeadersTooLargeError,
    IdempotencyConflictError,
    MailPassError,
    NoSmtpProviderError,
    NotFoundError,
    RecipientSuppressedError,
    SendFailedError,
    SendLimitExceededError,
    UnauthorizedError,
    ValidationError,
)
from mailpass.clock import utcnow
from mailpass.storage.tables import providers


@pytest.fixture
def threaded_sink(make_threaded_smtp_sink):
    """The client blocks the test's event loop, so the SMTP server runs on a thread."""
    return make_threaded_smtp_sink()


async def test_the_seed_php_example_in_python(live_server, make_account, threaded_sink):
    account = await make_account(sink=threaded_sink)

    client = Client(account.key, base_url=live_server.base_url)
    result = client.mail.send(
        to="user@example.com",
        subject="Hello",
        html="<p>Hello World</p>",
    )

    assert result.status == "sent"
    assert result.to == "user@example.com"
    assert result.from_email == "sender@shop.example"
    assert result.replayed is False
    [received] = threaded_sink.wait_for_sync(1)
    assert received.message["Message-ID"] == result.message_id
    assert received.message["Subject"] == "Hello"
    client.close()


async def test_every_field_reaches_the_mail_and_the_status(
    live_server, make_account, threaded_sink
):
    account = await make_account(sink=threaded_sink)
    with Client(account.key, base_url=live_server.base_url) as client:
        sent = client.mail.send(
            to=["user@example.com", "Other <other@example.com>"],
            subject="Order Confirmation",
            html="<h1>Your order has been confirmed</h1>",
            text="Your order has been confirmed",
            from_email="support@yourdomain.com",
            from_name="Your App",
            reply_to="reply@yourdomain.com",
            cc=["cc@example.com"],
            bcc=("bcc@example.com",),
            tags=["order", "confirmation"],
            metadata={"order_id": "12345"},
        )
        status = client.mail.status(sent.message_id)

    [received] = threaded_sink.wait_for_sync(1)
    assert received.message["From"] == "Your App <support@yourdomain.com>"
    assert received.message["Cc"] == "cc@example.com"
    assert sorted(received.rcpt_tos) == [
        "bcc@example.com",
        "cc@example.com",
        "other@example.com",
        "user@example.com",
    ]
    message = status.message
    assert message.message_id == sent.message_id
    assert message.status == "sent"
    assert message.from_name == "Your App"
    assert message.cc == ("cc@example.com",)
    assert message.bcc == ("bcc@example.com",)
    assert message.tags == ("order", "confirmation")
    assert message.metadata == {"order_id": "12345"}
    assert message.sent_at is not None
    assert message.sent_at.tzinfo is UTC
    assert abs((datetime.now(UTC) - message.created_at).total_seconds()) < 60
    (event,) = status.events
    assert (event.event_type, event.attempt) == ("sent", 1)
    assert event.smtp_reply is not None
    assert event.smtp_reply.startswith("250")
    assert event.created_at == message.sent_at


async def test_status_takes_the_id_with_or_without_brackets(
    live_server, make_account, threaded_sink
):
    account = await make_account(sink=threaded_sink)
    with Client(account.key, base_url=live_server.base_url) as client:
        sent = client.mail.send(to="user@example.com", subject="Hi", text="Hello")
        bare = sent.message_id.strip("<>")
        assert client.mail.status(bare).message.message_id == sent.message_id


async def test_a_batch_is_queued_and_then_delivered(live_server, make_account, threaded_sink):
    account = await make_account(sink=threaded_sink)
    with Client(account.key, base_url=live_server.base_url) as client:
        result = client.mail.send_batch(
            messages=[
                {"to": "a@example.com", "subject": "Hello A", "html": "<p>Hi A</p>"},
                {"to": "b@example.com", "subject": "Hello B", "html": "<p>Hi B</p>"},
                {"to": "not an address", "subject": "Broken", "text": "x"},
            ],
            from_email="support@yourdomain.com",
            from_name="Your App",
        )
        assert (result.total, result.queued, result.failed) == (3, 2, 1)
        first, _, broken = result.messages
        assert [item.queued for item in result.messages] == [True, True, False]
        assert isinstance(first.queue_id, int)
        assert "messages.2.to" in (broken.error or "")
        assert broken.details[0]["field"] == "messages.2.to"

        received = threaded_sink.wait_for_sync(2)  # the server's worker sends them
        assert sorted(m.message["Subject"] for m in received) == ["Hello A", "Hello B"]
        deadline = time.monotonic() + 5
        while client.mail.status(first.message_id or "").message.status != "sent":
            assert time.monotonic() < deadline, "the batch message was never marked sent"
            time.sleep(0.05)


async def test_each_error_code_is_its_own_exception(
    live_server, make_account, make_threaded_smtp_sink
):
    refusing = make_threaded_smtp_sink(data_replies=["550 5.1.1 mailbox unavailable"])
    account = await make_account(sink=refusing, provider_options={"hourly_limit": 1})
    no_provider = await make_account("bare@example.com", sink=None)
    wrong_permission = await make_account("keys-only@example.com", permissions=["keys"])

    def client(key: str) -> Client:
        return Client(key, base_url=live_server.base_url, max_retries=0)

    mail = client(account.key).mail
    with pytest.raises(ValidationError) as invalid:
        mail.send(to="not an address", subject="Hi", text="x")
    assert invalid.value.status_code == 400
    assert invalid.value.code == "VALIDATION_ERROR"
    assert [d["field"] for d in invalid.value.details] == ["to"]

    with pytest.raises(SendFailedError) as failed:
        mail.send(to="user@example.com", subject="Hi", text="x")
    assert failed.value.smtp_code == 550
    assert failed.value.smtp_reply == "550 5.1.1 mailbox unavailable"
    assert "550 5.1.1 mailbox unavailable" in str(failed.value)

    # The first takes the provider's one hourly slot; the second never gets that far.
    mail.send(to="user@example.com", subject="A", text="x", idempotency_key="same")
    with pytest.raises(IdempotencyConflictError):
        mail.send(to="user@example.com", subject="B", text="x", idempotency_key="same")

    with pytest.raises(SendLimitExceededError) as limited:
        mail.send(to="user@example.com", subject="Hi again", text="x")
    assert limited.value.status_code == 429
    assert 3500 < (limited.value.retry_after or 0) <= 3600

    with pytest.raises(NotFoundError):
        mail.status("<nothing@example.com>")
    with pytest.raises(NoSmtpProviderError):
        client(no_provider.key).mail.send(to="user@example.com", subject="Hi", text="x")
    with pytest.raises(ForbiddenError):
        client(wrong_permission.key).mail.send(to="user@example.com", subject="Hi", text="x")
    with pytest.raises(UnauthorizedError) as unauthorized:
        client("mp_live_" + "x" * 32).mail.status("<nothing@example.com>")
    assert isinstance(unauthorized.value, mailpass.APIError)
    assert isinstance(unauthorized.value, MailPassError)


async def test_a_provider_marked_down_is_said_so_and_headers_too_large_have_their_error(
    live_server, database, make_account, threaded_sink
):
    account = await make_account(sink=threaded_sink)
    until = (utcnow() + timedelta(seconds=90)).replace(microsecond=0)
    async with database.transaction() as connection:
        await connection.execute(
            providers.update()
            .where(providers.c.id == account.provider.id)
            .values(failure_streak=3, down_count=1, down_until=until, down_reason="timed out")
        )
    client = Client(account.key, base_url=live_server.base_url, max_retries=0)
    with pytest.raises(SendFailedError) as failed:
        client.mail.send(to="user@example.com", subject="Hi", text="x")
    assert failed.value.provider_down_until == until.replace(tzinfo=UTC)
    assert failed.value.smtp_code is None
    assert threaded_sink.messages == []

    class LargeHeaders(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            request.headers["X-Padding"] = "x" * 40_000
            return super().handle_request(request)

    padded = Client(
        account.key, base_url=live_server.base_url, max_retries=0, transport=LargeHeaders()
    )
    with pytest.raises(HeadersTooLargeError) as too_large:
        padded.mail.status("<nothing@example.com>")
    assert too_large.value.status_code == 431
    client.close()
    padded.close()


async def test_defaults_come_from_the_environment(
    live_server, make_account, threaded_sink, monkeypatch
):
    account = await make_account(sink=threaded_sink)
    monkeypatch.setenv("MAILPASS_API_KEY", account.key)
    monkeypatch.setenv("MAILPASS_API_URL", live_server.base_url + "/api/v1")  # as in the seed

    with Client() as client:
        sent = client.mail.send(to="user@example.com", subject="From env", text="x")

    assert threaded_sink.wait_for_sync(1)[0].message["Message-ID"] == sent.message_id


async def test_the_suppression_list_through_the_client(live_server, make_account, threaded_sink):
    account = await make_account(sink=threaded_sink, permissions=["mail", "suppressions"])
    with Client(account.key, base_url=live_server.base_url) as client:
        assert client.suppressions.add("Gone@Example.com") is True
        assert client.suppressions.add("gone@example.com", reason="complaint") is False
        page = client.suppressions.list(search="gone")
        assert [(s.email, s.reason) for s in page.suppressions] == [("gone@example.com", "manual")]
        assert page.next_cursor is None

        with pytest.raises(RecipientSuppressedError) as refused:
            client.mail.send(to="gone@example.com", subject="Hi", text="x")
        assert refused.value.suppressed == ("gone@example.com",)
        sent = client.mail.send(
            to="user@example.com", bcc="GONE@example.com", subject="Hi", text="x"
        )
        assert sent.suppressed == ("GONE@example.com",)
        [received] = threaded_sink.wait_for_sync(1)
        assert received.rcpt_tos == ["user@example.com"]

        client.suppressions.remove("gone@example.com")
        with pytest.raises(NotFoundError):
            client.suppressions.remove("gone@example.com")
        assert client.suppressions.list().suppressions == ()
