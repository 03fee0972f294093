"""Mailgun's webhooks (HMAC-SHA256 signed, one event a payload), against the real app on both
databases."""

from __future__ import annotations

from intake_helpers import mailgun_event, mailgun_payload

from mailpass.client import Event

SIGNING_KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"


async def test_delivered_failed_and_complained(app_client, make_hooked):
    hooked = await make_hooked("mailgun", SIGNING_KEY)
    message_id = await hooked.send(app_client, ["slow@example.com", "gone@example.com"])

    temporary = mailgun_event(
        "failed",
        message_id,
        "slow@example.com",
        severity="temporary",
        reason="generic",
        **{"delivery-status": {"code": 452, "message": "4.2.2 Mailbox full", "attempt-no": 1}},
    )
    permanent = mailgun_event(
        "failed",
        message_id,
        "gone@example.com",
        severity="permanent",
        reason="bounce",
        **{
            "delivery-status": {
                "code": 550,
                "message": "5.1.1 The email account that you tried to reach does not exist",
                "enhanced-code": "5.1.1",
            }
        },
    )
    delivered = mailgun_event(
        "delivered",
        message_id,
        "slow@example.com",
        **{"delivery-status": {"code": 250, "message": "OK"}},
    )
    for event in (temporary, permanent, delivered):
        answer = await app_client.post(hooked.path, json=mailgun_payload(SIGNING_KEY, event))
        assert answer.status_code == 200, answer.text
        assert answer.json()["data"]["recorded"] == 1

    status = await hooked.status(app_client, message_id)
    assert status["message"]["status"] == "bounced"
    story = [(e["event_type"], e.get("recipient")) for e in status["events"]]
    assert story == [
        ("sent", None),
        ("deferred", "slow@example.com"),
        ("bounced", "gone@example.com"),
        ("delivered", "slow@example.com"),
    ]
    assert status["events"][1]["reason"] == "452 4.2.2 Mailbox full"
    assert status["events"][2]["bounce_type"] == "hard"
    assert status["events"][2]["dsn_status"] == "5.1.1"
    assert await hooked.suppressed(app_client) == {"gone@example.com": "hard_bounce"}
    # The SDK reads the reported fields.
    bounce = Event.from_wire(status["events"][2])
    assert (bounce.provider, bounce.recipient, bounce.bounce_type) == (
        "mailgun",
        "gone@example.com",
        "hard",
    )
    assert bounce.diagnostic_code is not None
    assert bounce.diagnostic_code.startswith("550 5.1.1")

    complained = mailgun_event("complained", message_id, "slow@example.com")
    answer = await app_client.post(hooked.path, json=mailgun_payload(SIGNING_KEY, complained))
    assert answer.status_code == 200, answer.text
    status = await hooked.status(app_client, message_id)
    assert status["message"]["status"] == "complained"  # after bouncing for another recipient
    assert await hooked.suppressed(app_client) == {
        "gone@example.com": "hard_bounce",
        "slow@example.com": "complaint",
    }


async def test_opens_and_clicks_of_mailgun_are_ignored(app_client, make_hooked):
    hooked = await make_hooked("mailgun", SIGNING_KEY)
    message_id = await hooked.send(app_client)
    opened = mailgun_event("opened", message_id, "user@example.com")
    answer = await app_client.post(hooked.path, json=mailgun_payload(SIGNING_KEY, opened))
    assert answer.json()["data"] == {
        "received": 1,
        "recorded": 0,
        "duplicates": 0,
        "unmatched": 0,
        "ignored": 1,
    }


async def test_a_replayed_token_and_a_bad_signature_are_refused(app_client, make_hooked):
    hooked = await make_hooked("mailgun", SIGNING_KEY)
    message_id = await hooked.send(app_client)
    payload = mailgun_payload(
        SIGNING_KEY,
        mailgun_event("failed", message_id, "user@example.com", severity="permanent"),
    )
    first = await app_client.post(hooked.path, json=payload)
    assert first.status_code == 200, first.text
    replayed = await app_client.post(hooked.path, json=payload)
    assert replayed.status_code == 401
    assert "replay" in replayed.json()["error"]["message"]

    forged = mailgun_payload("not-the-key", mailgun_event("complained", message_id, "u@x.example"))
    answer = await app_client.post(hooked.path, json=forged)
    assert answer.status_code == 401
    unsigned = await app_client.post(hooked.path, json={"event-data": forged["event-data"]})
    assert unsigned.status_code == 401
    legacy_form = await app_client.post(hooked.path, data={"event": "delivered"})
    assert legacy_form.status_code == 400
    assert "legacy" in legacy_form.json()["error"]["message"]

    status = await hooked.status(app_client, message_id)
    assert [e["event_type"] for e in status["events"]] == ["sent", "bounced"]
    assert await hooked.suppressed(app_client) == {"user@example.com": "hard_bounce"}


async def test_mailguns_own_suppressions_are_rejections(app_client, make_hooked):
    hooked = await make_hooked("mailgun", SIGNING_KEY)
    message_id = await hooked.send(app_client)
    event = mailgun_event(
        "failed",
        message_id,
        "user@example.com",
        severity="permanent",
        reason="suppress-bounce",
        **{"delivery-status": {"code": 605, "description": "Not delivering to previously bounced"}},
    )
    answer = await app_client.post(hooked.path, json=mailgun_payload(SIGNING_KEY, event))
    assert answer.status_code == 200, answer.text
    status = await hooked.status(app_client, message_id)
    assert status["message"]["status"] == "failed"
    assert status["events"][-1]["event_type"] == "rejected"
    assert "previously bounced" in status["events"][-1]["reason"]
