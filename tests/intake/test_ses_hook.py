"""Amazon SES through SNS, against the real app on both databases: SNS's signing scheme
(SignatureVersion 1 and 2) with a certificate served over HTTPS by a local host, the
subscription confirmed, and SES's notifications recorded."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime

from intake_helpers import ses_mail


def confirmation(sns_host, version: str = "1") -> bytes:  # type: ignore[no-untyped-def]
    token = secrets.token_hex(32)
    return json.dumps(
        sns_host.sign(
            {
                "Type": "SubscriptionConfirmation",
                "MessageId": secrets.token_hex(16),
                "Token": token,
                "TopicArn": "arn:aws:sns:us-east-1:123456789012:ses-events",
                "Message": "You have chosen to subscribe to the topic ...",
                "SubscribeURL": f"https://localhost:{sns_host.port}/?Action=ConfirmSubscription"
                f"&Token={token}",
                "Timestamp": datetime.now(UTC).isoformat(timespec="milliseconds")[:-6] + "Z",
            },
            version,
        )
    ).encode()


async def test_the_subscription_is_confirmed(app_client, make_hooked, sns_host):
    hooked = await make_hooked("ses")
    answer = await app_client.post(
        hooked.path,
        content=confirmation(sns_host),
        headers={"x-amz-sns-message-type": "SubscriptionConfirmation"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"]["confirmed"] is True
    assert [path for path in sns_host.requests if "ConfirmSubscription" in path]


async def test_bounce_complaint_delivery_and_delay(app_client, make_hooked, sns_host):
    hooked = await make_hooked("ses")
    message_id = await hooked.send(app_client, ["gone@example.com", "ok@example.com"])
    mail = ses_mail(message_id, ["gone@example.com", "ok@example.com"])
    now = datetime.now(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"
    notifications = [
        {
            "notificationType": "Delivery",
            "mail": mail,
            "delivery": {
                "timestamp": now,
                "processingTimeMillis": 546,
                "recipients": ["ok@example.com"],
                "smtpResponse": "250 ok:  Message 64111812 accepted",
                "reportingMTA": "a8-70.smtp-out.amazonses.com",
            },
        },
        {
            "eventType": "DeliveryDelay",
            "mail": mail,
            "deliveryDelay": {
                "timestamp": now,
                "delayType": "MailboxFull",
                "expirationTime": now,
                "delayedRecipients": [
                    {
                        "emailAddress": "gone@example.com",
                        "status": "4.2.2",
                        "diagnosticCode": "smtp; 452 4.2.2 Mailbox full",
                    }
                ],
            },
        },
        {
            "notificationType": "Bounce",
            "mail": mail,
            "bounce": {
                "bounceType": "Permanent",
                "bounceSubType": "General",
                "bouncedRecipients": [
                    {
                        "emailAddress": "gone@example.com",
                        "action": "failed",
                        "status": "5.1.1",
                        "diagnosticCode": "smtp; 550 5.1.1 user unknown",
                    }
                ],
                "timestamp": now,
                "feedbackId": "0100018c-feedback",
                "reportingMTA": "dsn; a8-70.smtp-out.amazonses.com",
            },
        },
        {
            "notificationType": "Complaint",
            "mail": mail,
            "complaint": {
                "complainedRecipients": [{"emailAddress": "ok@example.com"}],
                "timestamp": now,
                "feedbackId": "0100018c-complaint",
                "complaintFeedbackType": "abuse",
            },
        },
    ]
    for version, notification in zip("1212", notifications, strict=True):
        answer = await app_client.post(
            hooked.path,
            content=sns_host.notification(notification, version),
            headers={"x-amz-sns-message-type": "Notification", "content-type": "text/plain"},
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["data"]["recorded"] == 1

    status = await hooked.status(app_client, message_id)
    assert status["message"]["status"] == "complained"
    story = [(e["event_type"], e.get("recipient")) for e in status["events"]]
    assert story == [
        ("sent", None),
        ("delivered", "ok@example.com"),
        ("deferred", "gone@example.com"),
        ("bounced", "gone@example.com"),
        ("complained", "ok@example.com"),
    ]
    bounce = status["events"][3]
    assert bounce["bounce_type"] == "hard"
    assert bounce["bounce_subtype"] == "General"
    assert bounce["diagnostic_code"] == "smtp; 550 5.1.1 user unknown"
    assert status["events"][4]["feedback_type"] == "abuse"
    assert await hooked.suppressed(app_client) == {
        "gone@example.com": "hard_bounce",
        "ok@example.com": "complaint",
    }
    # The certificate was fetched once, then kept.
    assert sum(path.endswith(".pem") for path in sns_host.requests) == 1


async def test_a_retried_notification_is_recorded_once(app_client, make_hooked, sns_host):
    hooked = await make_hooked("ses")
    message_id = await hooked.send(app_client)
    body = sns_host.notification(
        {
            "notificationType": "Delivery",
            "mail": ses_mail(message_id, ["user@example.com"]),
            "delivery": {
                "timestamp": "2026-12-07T10:00:00.000Z",
                "recipients": ["user@example.com"],
            },
        }
    )
    first = await app_client.post(hooked.path, content=body)
    again = await app_client.post(hooked.path, content=body)
    assert first.json()["data"]["recorded"] == 1
    assert again.status_code == 200
    assert again.json()["data"]["duplicates"] == 1
    status = await hooked.status(app_client, message_id)
    assert [e["event_type"] for e in status["events"]] == ["sent", "delivered"]


async def test_forged_messages_and_foreign_certificates_are_refused(
    app_client, make_hooked, sns_host
):
    hooked = await make_hooked("ses")
    message_id = await hooked.send(app_client)
    notification = {
        "notificationType": "Bounce",
        "mail": ses_mail(message_id, ["user@example.com"]),
        "bounce": {
            "bounceType": "Permanent",
            "bouncedRecipients": [{"emailAddress": "user@example.com"}],
            "timestamp": "2026-12-07T10:00:00.000Z",
        },
    }
    signed = json.loads(sns_host.notification(notification))

    tampered = {**signed, "Message": signed["Message"].replace("Permanent", "Transient")}
    answer = await app_client.post(hooked.path, json=tampered)
    assert answer.status_code == 401, answer.text

    # A certificate anywhere but SNS's hosts is never fetched.
    elsewhere = sns_host.sign(
        {
            **{k: v for k, v in signed.items() if not k.startswith("Sig")},
            "SigningCertURL": f"https://127.0.0.1:{sns_host.port}/evil.pem",
        }
    )
    before = list(sns_host.requests)
    answer = await app_client.post(hooked.path, json=elsewhere)
    assert answer.status_code == 401
    assert "not an https URL of SNS" in answer.json()["error"]["message"]
    plain_http = {**elsewhere, "SigningCertURL": f"http://localhost:{sns_host.port}/x.pem"}
    assert (await app_client.post(hooked.path, json=plain_http)).status_code == 401
    assert sns_host.requests == before

    # A subscription to a host other than SNS's is not confirmed.
    foreign = json.loads(confirmation(sns_host))
    foreign["SubscribeURL"] = "https://attacker.example/confirm"
    answer = await app_client.post(hooked.path, json=sns_host.sign(foreign))
    assert answer.status_code == 401

    unknown_version = {**signed, "SignatureVersion": "3"}
    assert (await app_client.post(hooked.path, json=unknown_version)).status_code == 401
    assert (await app_client.post(hooked.path, content=b"not json")).status_code == 400

    status = await hooked.status(app_client, message_id)
    assert [e["event_type"] for e in status["events"]] == ["sent"]
    assert await hooked.suppressed(app_client) == {}
