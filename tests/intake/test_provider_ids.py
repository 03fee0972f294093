"""Events found by the provider's own id for the mail, on both databases: SES puts a
Message-ID of its own on mail sent through its SMTP interface, so its notifications name the
mail by the id SES answered DATA with; SendGrid's events may come without the mail's
Message-ID but always with ``sg_message_id``. Only the account's own mail, sent through the
provider whose webhook reports it, is found this way."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from intake_helpers import SendGridSigner, sendgrid_event, ses_mail

SES_ID = "0100018c5a1b2c3d-0a1b2c3d-4e5f-4a1b-9c8d-7e6f5a4b3c2d-000000"
SENDGRID_ID = "Vh5sNtN7Qdm3Xa0WqXUzfA"


def ses_bounce(recipient: str) -> dict[str, object]:
    now = datetime.now(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"
    # The Message-ID SES gave the mail, not the one MailPass did.
    mail = ses_mail(f"<{SES_ID}@email.amazonses.com>", [recipient])
    mail["messageId"] = SES_ID
    return {
        "notificationType": "Bounce",
        "mail": mail,
        "bounce": {
            "bounceType": "Permanent",
            "bounceSubType": "General",
            "bouncedRecipients": [
                {"emailAddress": recipient, "action": "failed", "status": "5.1.1"}
            ],
            "timestamp": now,
            "feedbackId": "0100018c-feedback",
        },
    }


async def test_ses_notifications_find_the_mail_by_the_id_ses_answered_with(
    app_client, make_hooked, sns_host
):
    hooked = await make_hooked("ses", data_replies=[f"250 Ok {SES_ID}"])
    message_id = await hooked.send(app_client, "gone@example.com")
    # Another account's mail that SES happened to give the same id: not this webhook's.
    other = await make_hooked("ses", email="other@example.com", data_replies=[f"250 Ok {SES_ID}"])
    other_id = await other.send(app_client, "gone@example.com")

    answer = await app_client.post(
        hooked.path,
        content=sns_host.notification(ses_bounce("gone@example.com")),
        headers={"x-amz-sns-message-type": "Notification", "content-type": "text/plain"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"]["recorded"] == 1

    status = await hooked.status(app_client, message_id)
    assert status["message"]["status"] == "bounced"
    bounced = [e for e in status["events"] if e["event_type"] == "bounced"]
    assert bounced[0]["recipient"] == "gone@example.com"
    assert await hooked.suppressed(app_client) == {"gone@example.com": "hard_bounce"}
    assert (await other.status(app_client, other_id))["message"]["status"] == "sent"
    assert await other.suppressed(app_client) == {}


async def test_sendgrid_events_without_the_message_id_are_found_by_sg_message_id(
    app_client, make_hooked
):
    signer = SendGridSigner()
    hooked = await make_hooked(
        "sendgrid", signer.public_key, data_replies=[f"250 Ok: queued as {SENDGRID_ID}"]
    )
    message_id = await hooked.send(app_client, "angry@example.com")
    event = sendgrid_event(
        "spamreport",
        message_id,
        "angry@example.com",
        sg_message_id=f"{SENDGRID_ID}.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC5A1-2D.0",
    )
    del event["smtp-id"]  # spam reports come without it
    body = json.dumps([event]).encode()
    answer = await app_client.post(hooked.path, content=body, headers=signer.headers(body))
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"]["recorded"] == 1
    status = await hooked.status(app_client, message_id)
    assert status["message"]["status"] == "complained"
    assert await hooked.suppressed(app_client) == {"angry@example.com": "complaint"}
