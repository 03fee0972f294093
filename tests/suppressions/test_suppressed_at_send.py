"""The suppression list checked again at a queued message's turn: a scheduled message or a
batch item to an address suppressed after it was accepted (a hard bounce meanwhile) is not
sent to it, against a real SMTP server on both databases."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from mailpass.clock import isoformat, utcnow


async def test_a_queued_message_to_an_address_suppressed_since_is_not_sent(
    app_client, make_account, smtp_sink
):
    account = await make_account(sink=smtp_sink, permissions=["mail", "suppressions"])
    queued = await app_client.post(
        "/api/v1/mail/send-batch",
        json={
            "messages": [
                {"to": "gone@example.com", "subject": "Hi", "text": "Hello"},
                {
                    "to": "stays@example.com",
                    "cc": ["Gone@Example.com"],
                    "subject": "Hi",
                    "text": "Hello",
                },
            ]
        },
        headers=account.headers,
    )
    assert queued.status_code == 200, queued.text
    only_gone, with_cc = (item["message_id"] for item in queued.json()["data"]["messages"])
    # Between acceptance and its turn, the address bounced.
    added = await app_client.post(
        "/api/v1/suppressions",
        json={"email": "gone@example.com", "reason": "hard_bounce"},
        headers=account.headers,
    )
    assert added.status_code == 200, added.text

    await app_client.app.state.services.worker().run(until_idle=True)

    (delivered,) = smtp_sink.messages
    assert delivered.rcpt_tos == ["stays@example.com"]
    first = (
        await app_client.get(f"/api/v1/mail/status/{only_gone}", headers=account.headers)
    ).json()["data"]
    assert first["message"]["status"] == "suppressed"
    assert "gone@example.com" in first["message"]["error_message"]
    assert first["events"][-1] == {
        "event_type": "suppressed",
        "recipients": ["gone@example.com"],
        "created_at": first["events"][-1]["created_at"],
    }
    second = (
        await app_client.get(f"/api/v1/mail/status/{with_cc}", headers=account.headers)
    ).json()["data"]
    assert second["message"]["status"] == "sent"
    assert [e["event_type"] for e in second["events"]] == ["queued", "sent", "suppressed"]
    assert second["events"][2]["recipients"] == ["Gone@example.com"]  # as in its envelope


async def test_a_scheduled_message_gives_back_its_slot_when_suppressed(
    app_client, make_account, smtp_sink, database
):
    account = await make_account(
        sink=smtp_sink,
        permissions=["mail", "suppressions"],
        provider_options={"hourly_limit": 1},
    )
    soon = isoformat(utcnow() + timedelta(seconds=1)) + "Z"
    scheduled = await app_client.post(
        "/api/v1/mail/send",
        json={"to": "gone@example.com", "subject": "Hi", "text": "Hello", "scheduled_at": soon},
        headers=account.headers,
    )
    assert scheduled.status_code == 200, scheduled.text
    await app_client.post(
        "/api/v1/suppressions", json={"email": "gone@example.com"}, headers=account.headers
    )
    await asyncio.sleep(1.1)
    await app_client.app.state.services.worker().run(until_idle=True)
    assert smtp_sink.messages == []
    # Its slot of the hourly limit is free for the next message.
    sent = await app_client.post(
        "/api/v1/mail/send",
        json={"to": "other@example.com", "subject": "Hi", "text": "Hello"},
        headers=account.headers,
    )
    assert sent.status_code == 200, sent.text
