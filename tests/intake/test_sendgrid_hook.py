"""SendGrid's Event Webhook, signed with ECDSA, against the real app on both databases: mail
really sent through the provider, then SendGrid's events about it."""

from __future__ import annotations

import json

import sqlalchemy as sa
from intake_helpers import SendGridSigner, sendgrid_event

from mailpass.storage.tables import events


async def post(client, hooked, signer, items, **overrides):  # type: ignore[no-untyped-def]
    body = json.dumps(items).encode()
    headers = {**signer.headers(body), **overrides}
    return await client.post(hooked.path, content=body, headers=headers)


async def event_count(database) -> int:  # type: ignore[no-untyped-def]
    async with database.read() as connection:
        query = sa.select(sa.func.count()).select_from(events)
        return int((await connection.execute(query)).scalar_one())


async def test_events_are_recorded_and_a_hard_bounce_suppresses(app_client, make_hooked):
    signer = SendGridSigner()
    hooked = await make_hooked("sendgrid", signer.public_key)
    bounced_id = await hooked.send(app_client, "gone@example.com")
    fine_id = await hooked.send(app_client, "fine@example.com")

    answer = await post(
        app_client,
        hooked,
        signer,
        [
            sendgrid_event("processed", fine_id, "fine@example.com"),
            sendgrid_event("delivered", fine_id, "fine@example.com", response="250 2.0.0 OK"),
            sendgrid_event("open", fine_id, "fine@example.com"),
            sendgrid_event(
                "bounce",
                bounced_id,
                "Gone@Example.com",
                type="bounce",
                status="5.1.1",
                reason="550 5.1.1 The email account that you tried to reach does not exist",
                bounce_classification="Invalid Address",
            ),
            sendgrid_event("delivered", "<not-ours@elsewhere.example>", "x@example.com"),
        ],
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "success": True,
        "data": {"received": 5, "recorded": 2, "duplicates": 0, "unmatched": 1, "ignored": 2},
    }

    bounced = await hooked.status(app_client, bounced_id)
    assert bounced["message"]["status"] == "bounced"
    last = bounced["events"][-1]
    assert last["event_type"] == "bounced"
    assert last["bounce_type"] == "hard"
    assert last["dsn_status"] == "5.1.1"
    assert last["recipient"] == "Gone@Example.com"
    assert last["provider"] == "sendgrid"
    assert "does not exist" in last["diagnostic_code"]

    fine = await hooked.status(app_client, fine_id)
    assert fine["message"]["status"] == "sent"
    assert [e["event_type"] for e in fine["events"]] == ["sent", "delivered"]
    assert fine["events"][1]["smtp_reply"] == "250 2.0.0 OK"

    assert await hooked.suppressed(app_client) == {"gone@example.com": "hard_bounce"}
    again = await app_client.post(
        "/api/v1/mail/send",
        json={"to": "gone@example.com", "subject": "Again", "text": "Hi"},
        headers=hooked.headers,
    )
    assert again.status_code == 422
    assert again.json()["error"]["code"] == "RECIPIENT_SUPPRESSED"


async def test_a_complaint_marks_the_message_and_suppresses(app_client, make_hooked):
    signer = SendGridSigner()
    hooked = await make_hooked("sendgrid", signer.public_key)
    message_id = await hooked.send(app_client, "angry@example.com")
    answer = await post(
        app_client, hooked, signer, [sendgrid_event("spamreport", message_id, "angry@example.com")]
    )
    assert answer.status_code == 200, answer.text
    status = await hooked.status(app_client, message_id)
    assert status["message"]["status"] == "complained"
    assert status["events"][-1]["event_type"] == "complained"
    assert await hooked.suppressed(app_client) == {"angry@example.com": "complaint"}


async def test_a_redelivered_event_is_recorded_once(app_client, make_hooked):
    signer = SendGridSigner()
    hooked = await make_hooked("sendgrid", signer.public_key)
    message_id = await hooked.send(app_client)
    event = sendgrid_event("delivered", message_id, "user@example.com")
    first = await post(app_client, hooked, signer, [event])
    again = await post(app_client, hooked, signer, [event])
    assert first.json()["data"]["recorded"] == 1
    assert again.json()["data"] == {
        "received": 1,
        "recorded": 0,
        "duplicates": 1,
        "unmatched": 0,
        "ignored": 0,
    }
    status = await hooked.status(app_client, message_id)
    assert [e["event_type"] for e in status["events"]] == ["sent", "delivered"]


async def test_unsigned_badly_signed_or_misaddressed_payloads_record_nothing(
    app_client, make_hooked, database
):
    signer = SendGridSigner()
    hooked = await make_hooked("sendgrid", signer.public_key)
    message_id = await hooked.send(app_client)
    items = [sendgrid_event("bounce", message_id, "user@example.com", type="bounce")]
    body = json.dumps(items).encode()

    unsigned = await app_client.post(hooked.path, content=body)
    assert unsigned.status_code == 401
    assert unsigned.json()["error"]["code"] == "UNAUTHORIZED"
    assert "not signed" in unsigned.json()["error"]["message"]

    other_key = SendGridSigner()
    forged = await app_client.post(hooked.path, content=body, headers=other_key.headers(body))
    assert forged.status_code == 401
    assert "signature" in forged.json()["error"]["message"]

    tampered = await app_client.post(
        hooked.path, content=body.replace(b"bounce", b"bounce "), headers=signer.headers(body)
    )
    assert tampered.status_code == 401

    stale = await app_client.post(
        hooked.path, content=body, headers=signer.headers(body, timestamp=1_600_000_000)
    )
    assert stale.status_code == 401
    assert "too far from now" in stale.json()["error"]["message"]

    wrong_token = hooked.path.rsplit("/", 1)[0] + "/" + "x" * 32
    misaddressed = await app_client.post(wrong_token, content=body, headers=signer.headers(body))
    assert misaddressed.status_code == 401
    wrong_kind = hooked.path.replace("/sendgrid/", "/mailgun/")
    assert (
        await app_client.post(wrong_kind, content=body, headers=signer.headers(body))
    ).status_code == 401
    assert (await app_client.post("/hooks/x/sendgrid/y", content=body)).status_code == 401

    not_json = await app_client.post(
        hooked.path, content=b"{oops", headers=signer.headers(b"{oops")
    )
    assert not_json.status_code == 400
    assert not_json.json()["error"]["code"] == "VALIDATION_ERROR"

    assert await event_count(database) == 0
    status = await hooked.status(app_client, message_id)
    assert status["message"]["status"] == "sent"
    assert await hooked.suppressed(app_client) == {}


async def test_without_a_key_the_hook_refuses(app_client, make_hooked):
    signer = SendGridSigner()
    hooked = await make_hooked("sendgrid")
    body = b"[]"
    answer = await app_client.post(hooked.path, content=body, headers=signer.headers(body))
    assert answer.status_code == 401
    assert "no webhook key" in answer.json()["error"]["message"]


async def test_soft_bounces_in_a_row_suppress_and_a_delivery_resets_the_count(
    app_client, make_hooked
):
    signer = SendGridSigner()
    hooked = await make_hooked("sendgrid", signer.public_key)

    async def soft_bounce() -> None:
        message_id = await hooked.send(app_client, "full@example.com")
        answer = await post(
            app_client,
            hooked,
            signer,
            [sendgrid_event("bounce", message_id, "full@example.com", type="blocked")],
        )
        assert answer.json()["data"]["recorded"] == 1
        status = await hooked.status(app_client, message_id)
        assert status["message"]["status"] == "sent"  # a soft bounce does not end the message
        assert status["events"][-1]["bounce_type"] == "soft"

    await soft_bounce()
    await soft_bounce()
    delivered_id = await hooked.send(app_client, "full@example.com")
    await post(
        app_client,
        hooked,
        signer,
        [sendgrid_event("delivered", delivered_id, "full@example.com")],
    )
    await soft_bounce()
    await soft_bounce()
    assert await hooked.suppressed(app_client) == {}
    await soft_bounce()  # the third in a row (MAILPASS_SOFT_BOUNCE_LIMIT's default)
    assert await hooked.suppressed(app_client) == {"full@example.com": "soft_bounces"}
