"""Outbound webhooks, end to end on both databases: an endpoint registered through the API,
an event recorded (a SendGrid bounce), its delivery in the outbox of the same transaction, and
the dispatcher POSTing it to a real HTTP server that fails first and then takes it, the same
``webhook-id`` both times, signed so that the SDK's ``verify`` accepts it."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from intake_helpers import SendGridSigner, sendgrid_event

import mailpass.webhooks
from mailpass.clock import isoformat, utcnow
from mailpass.config import Settings
from mailpass.storage.tables import webhook_deliveries


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"webhooks_allow_private": True})


async def bounce(app_client, hooked, signer) -> str:  # type: ignore[no-untyped-def]
    message_id = await hooked.send(app_client, "gone@example.com")
    body = json.dumps(
        [sendgrid_event("bounce", message_id, "gone@example.com", type="bounce", status="5.1.1")]
    ).encode()
    answer = await app_client.post(hooked.path, content=body, headers=signer.headers(body))
    assert answer.json()["data"]["recorded"] == 1, answer.text
    return message_id


async def register(app_client, hooked, url: str, **fields: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    answer = await app_client.post(
        "/api/v1/webhooks", json={"url": url, **fields}, headers=hooked.headers
    )
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()["data"]
    return data


async def dispatch(app_client) -> None:  # type: ignore[no-untyped-def]
    dispatcher = app_client.app.state.services.webhooks.dispatcher()
    try:
        await dispatcher.run(until_idle=True)
    finally:
        await dispatcher.close()


async def make_due(database) -> None:  # type: ignore[no-untyped-def]
    async with database.transaction() as connection:
        await connection.execute(webhook_deliveries.update().values(next_attempt_at=utcnow()))


async def test_an_event_is_delivered_signed_and_retried_with_the_same_id(
    app_client, make_hooked, webhook_receiver, database
):
    signer = SendGridSigner()
    hooked = await make_hooked("sendgrid", signer.public_key, permissions=["mail", "webhooks"])
    endpoint = webhook_receiver([500])
    created = await register(app_client, hooked, endpoint.url, event_types=["bounced"])
    secret = created.pop("secret")
    assert secret.startswith("whsec_")
    listed = await app_client.get("/api/v1/webhooks", headers=hooked.headers)
    assert listed.json()["data"]["webhooks"] == [created]  # the secret is never shown again

    message_id = await bounce(app_client, hooked, signer)
    await dispatch(app_client)
    assert len(endpoint.received) == 1  # answered 500: tried again later
    log = await app_client.get(
        f"/api/v1/webhooks/{created['id']}/deliveries", headers=hooked.headers
    )
    (first,) = log.json()["data"]["deliveries"]
    assert (first["state"], first["attempts"], first["last_status"]) == ("pending", 1, 500)
    assert first["next_attempt_at"] is not None

    await make_due(database)
    await dispatch(app_client)
    assert len(endpoint.received) == 2
    (headers_1, body_1), (headers_2, body_2) = endpoint.received
    assert headers_1["webhook-id"] == headers_2["webhook-id"]
    assert body_1 == body_2
    delivered = mailpass.webhooks.verify(body_2, headers_2, secret)
    assert delivered["type"] == "email.bounced"
    assert delivered["data"]["message_id"] == message_id
    assert delivered["data"]["bounce_type"] == "hard"
    assert delivered["data"]["recipient"] == "gone@example.com"
    with pytest.raises(mailpass.webhooks.WebhookVerificationError):
        mailpass.webhooks.verify(body_2.replace(b"hard", b"soft"), headers_2, secret)
    with pytest.raises(mailpass.webhooks.WebhookVerificationError):
        mailpass.webhooks.verify(body_2, headers_2, "whsec_" + "A" * 32)

    log = await app_client.get(
        f"/api/v1/webhooks/{created['id']}/deliveries", headers=hooked.headers
    )
    (done,) = log.json()["data"]["deliveries"]
    assert (done["state"], done["attempts"], done["last_status"]) == ("delivered", 2, 200)
    await dispatch(app_client)
    assert len(endpoint.received) == 2  # delivered: never again


async def test_only_the_types_an_endpoint_wants_reach_it(app_client, make_hooked, webhook_receiver):
    signer = SendGridSigner()
    hooked = await make_hooked("sendgrid", signer.public_key, permissions=["mail", "webhooks"])
    wants_complaints = webhook_receiver([])
    wants_all = webhook_receiver([])
    await register(app_client, hooked, wants_complaints.url, event_types=["complained"])
    await register(app_client, hooked, wants_all.url)
    await bounce(app_client, hooked, signer)
    await dispatch(app_client)
    assert wants_complaints.received == []
    types = [json.loads(body)["type"] for _, body in wants_all.received]
    assert sorted(types) == ["email.bounced", "email.sent"]


async def test_private_addresses_are_refused_unless_allowed(
    app_client, make_hooked, webhook_receiver, database, settings
):
    app_client.app.state.services.webhooks.settings = settings.model_copy(
        update={"webhooks_allow_private": False}
    )
    signer = SendGridSigner()
    hooked = await make_hooked("sendgrid", signer.public_key, permissions=["mail", "webhooks"])
    endpoint = webhook_receiver([])
    created = await register(app_client, hooked, endpoint.url, event_types=["bounced"])
    await bounce(app_client, hooked, signer)
    await dispatch(app_client)
    assert endpoint.received == []  # nothing reached the private address
    log = await app_client.get(
        f"/api/v1/webhooks/{created['id']}/deliveries", headers=hooked.headers
    )
    (attempt,) = log.json()["data"]["deliveries"]
    assert attempt["state"] == "pending"
    assert "private address" in attempt["last_error"]


async def test_bad_endpoints_are_refused_and_keys_need_the_permission(app_client, make_hooked):
    hooked = await make_hooked("sendgrid", permissions=["mail", "webhooks"])
    for fields, fragment in (
        ({"url": "ftp://example.com/x"}, "http"),
        ({"url": "https://user:pw@example.com/"}, "user name"),
        ({"url": "https://example.com/", "event_types": ["bounce"]}, "unknown event types"),
        ({"url": "https://example.com/", "secret": "mine"}, "secret"),
    ):
        answer = await app_client.post("/api/v1/webhooks", json=fields, headers=hooked.headers)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["code"] == "VALIDATION_ERROR"
        assert fragment in answer.text
    assert (
        await app_client.delete("/api/v1/webhooks/999", headers=hooked.headers)
    ).status_code == 404

    mail_only = await make_hooked("sendgrid", email="other@example.com", permissions=["mail"])
    refused = await app_client.get("/api/v1/webhooks", headers=mail_only.headers)
    assert refused.status_code == 403


async def test_a_deleted_endpoint_takes_its_outbox_with_it(
    app_client, make_hooked, webhook_receiver, database
):
    signer = SendGridSigner()
    hooked = await make_hooked("sendgrid", signer.public_key, permissions=["mail", "webhooks"])
    endpoint = webhook_receiver([])
    created = await register(app_client, hooked, endpoint.url)
    await bounce(app_client, hooked, signer)
    deleted = await app_client.delete(f"/api/v1/webhooks/{created['id']}", headers=hooked.headers)
    assert deleted.status_code == 200
    await dispatch(app_client)
    assert endpoint.received == []
    async with database.read() as connection:
        left = (
            await connection.execute(sa.select(sa.func.count()).select_from(webhook_deliveries))
        ).scalar_one()
    assert left == 0


async def test_sent_failed_deferred_and_cancelled_reach_the_endpoint(
    app_client, make_account, make_smtp_sink, webhook_receiver
):
    sink = await make_smtp_sink(
        data_replies=["550 5.7.1 refused", "250 2.0.0 Ok: queued as 4F2", "451 4.3.0 later"]
    )
    account = await make_account(sink=sink, permissions=["mail", "webhooks"])
    endpoint = webhook_receiver([])
    created = await app_client.post(
        "/api/v1/webhooks", json={"url": endpoint.url}, headers=account.headers
    )
    secret = created.json()["data"]["secret"]

    async def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = await app_client.post(path, json=body, headers=account.headers)
        data: dict[str, Any] = answer.json()
        return data

    refused = await post("/api/v1/mail/send", {"to": "a@example.com", "subject": "1", "text": "x"})
    assert refused["error"]["code"] == "SEND_FAILED"
    sent = await post(
        "/api/v1/mail/send",
        {"to": "b@example.com", "subject": "2", "text": "x", "metadata": {"order": "7"}},
    )
    queued = await post(
        "/api/v1/mail/send-batch",
        {"messages": [{"to": "c@example.com", "subject": "3", "text": "x"}]},
    )
    scheduled = await post(
        "/api/v1/mail/send",
        {
            "to": "d@example.com",
            "subject": "4",
            "text": "x",
            "scheduled_at": isoformat(utcnow() + timedelta(days=1)) + "Z",
        },
    )
    cancel = await app_client.post(
        f"/api/v1/mail/cancel/{scheduled['data']['message_id']}", headers=account.headers
    )
    assert cancel.status_code == 200, cancel.text
    worker = app_client.app.state.services.worker()
    await worker.run(until_idle=True)  # the batch item: 451, deferred
    await dispatch(app_client)

    delivered = [
        mailpass.webhooks.verify(body, headers, secret) for headers, body in endpoint.received
    ]
    story = sorted((d["data"]["subject"], d["type"]) for d in delivered)
    assert story == [
        ("1", "email.failed"),
        ("2", "email.sent"),
        ("3", "email.deferred"),
        ("4", "email.cancelled"),
    ]
    by_subject = {d["data"]["subject"]: d for d in delivered}
    assert by_subject["2"]["data"]["message_id"] == sent["data"]["message_id"]
    assert by_subject["2"]["data"]["metadata"] == {"order": "7"}
    assert by_subject["2"]["data"]["to"] == "b@example.com"
    assert by_subject["2"]["data"]["smtp_reply"].startswith("250")
    assert "550 5.7.1" in by_subject["1"]["data"]["reason"]
    deferred = by_subject["3"]["data"]
    assert deferred["queue_id"] == queued["data"]["messages"][0]["queue_id"]
    assert deferred["attempt"] == 1
    assert deferred["next_attempt_at"]
