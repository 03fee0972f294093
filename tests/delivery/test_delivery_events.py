"""Every attempt of a message leaves its event: /status tells its whole story, oldest first,
against real SMTP servers on both databases."""

from __future__ import annotations

from datetime import datetime, timedelta

from mailpass.clock import utcnow

ITEM = {"to": "user@example.com", "subject": "Told", "text": "hello"}
DEFERRING = "451 4.3.0 Try again later"


async def events_of(app_client, account, message_id: str) -> list[dict]:  # type: ignore[no-untyped-def]
    answer = await app_client.get(f"/api/v1/mail/status/{message_id}", headers=account.headers)
    assert answer.status_code == 200, answer.text
    events: list[dict] = answer.json()["data"]["events"]
    times = [datetime.fromisoformat(event["created_at"]) for event in events]
    assert times == sorted(times), events  # oldest first
    return events


def kinds(events: list[dict]) -> list[str]:
    return [event["event_type"] for event in events]


async def test_a_retried_message_tells_each_attempt(
    fast_retries, app_client, make_account, make_smtp_sink, queue_batch, drain
):
    sink = await make_smtp_sink(data_replies=[DEFERRING, DEFERRING])
    account = await make_account(sink=sink)
    data = await queue_batch(account, [ITEM])
    message_id = data["messages"][0]["message_id"]
    assert kinds(await events_of(app_client, account, message_id)) == ["queued"]

    assert await drain() == 0
    events = await events_of(app_client, account, message_id)
    assert kinds(events) == ["queued", "deferred", "deferred", "sent"]
    queued, first, second, sent = events
    assert queued == {"event_type": "queued", "created_at": queued["created_at"]}
    for number, deferred in ((1, first), (2, second)):
        assert deferred["attempt"] == number
        assert deferred["reason"] == DEFERRING
        assert datetime.fromisoformat(deferred["next_attempt_at"]) >= datetime.fromisoformat(
            deferred["created_at"]
        )
    assert second["created_at"] >= first["next_attempt_at"][:19]
    # The provider's own answer, with the id it gave the mail.
    assert sent["smtp_reply"].startswith("250 "), sent
    assert sent["attempt"] == 3


async def test_a_message_that_cannot_be_delivered_ends_with_its_failure(
    fast_retries, app_client, make_account, make_smtp_sink, queue_batch, drain
):
    sink = await make_smtp_sink(data_replies=[DEFERRING, "550 5.1.1 No such user"])
    account = await make_account(sink=sink)
    data = await queue_batch(account, [ITEM])
    assert await drain() == 0
    events = await events_of(app_client, account, data["messages"][0]["message_id"])
    assert kinds(events) == ["queued", "deferred", "failed"]
    assert events[-1]["reason"] == "550 5.1.1 No such user"
    assert events[-1]["attempt"] == 2
    assert "next_attempt_at" not in events[-1]


async def test_send_tells_the_providers_reply_or_its_refusal(
    app_client, make_account, make_smtp_sink
):
    sink = await make_smtp_sink(data_replies=["250 2.0.0 Ok: queued as 4F2A", "554 5.7.1 Spam"])
    account = await make_account(sink=sink)
    sent = await app_client.post("/api/v1/mail/send", json=ITEM, headers=account.headers)
    assert sent.status_code == 200, sent.text
    events = await events_of(app_client, account, sent.json()["data"]["message_id"])
    assert events == [
        {
            "event_type": "sent",
            "smtp_reply": "250 2.0.0 Ok: queued as 4F2A",
            "attempt": 1,
            "created_at": events[0]["created_at"],
        }
    ]

    refused = await app_client.post("/api/v1/mail/send", json=ITEM, headers=account.headers)
    assert refused.status_code == 500, refused.text
    async with app_client.app.state.services.database.read() as connection:
        import sqlalchemy as sa

        from mailpass.storage.tables import messages

        (message_id,) = (
            await connection.execute(
                sa.select(messages.c.message_id).where(messages.c.status == "failed")
            )
        ).scalars()
    events = await events_of(app_client, account, message_id)
    assert kinds(events) == ["failed"]
    assert events[0]["reason"] == "554 5.7.1 Spam"


async def test_a_scheduled_then_cancelled_message_says_so(app_client, make_account, smtp_sink):
    account = await make_account(sink=smtp_sink)
    due = (utcnow() + timedelta(hours=1)).replace(microsecond=0)
    answer = await app_client.post(
        "/api/v1/mail/send",
        json={**ITEM, "scheduled_at": due.isoformat() + "Z"},
        headers=account.headers,
    )
    assert answer.status_code == 200, answer.text
    message_id = answer.json()["data"]["message_id"]
    events = await events_of(app_client, account, message_id)
    assert events == [
        {
            "event_type": "scheduled",
            "scheduled_at": due.isoformat(),
            "created_at": events[0]["created_at"],
        }
    ]
    cancelled = await app_client.post(f"/api/v1/mail/cancel/{message_id}", headers=account.headers)
    assert cancelled.status_code == 200, cancelled.text
    assert kinds(await events_of(app_client, account, message_id)) == ["scheduled", "cancelled"]
