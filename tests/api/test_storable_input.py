"""Input that the database could not store is refused in the envelope, never a 500: NUL
characters (PostgreSQL text cannot hold them) and address lists longer than their columns."""

from __future__ import annotations

import pytest

SEND = "/api/v1/mail/send"
BATCH = "/api/v1/mail/send-batch"
# 45 recipients of 95 characters: within the 50-recipient limit, 4,000+ characters together.
LONG_LIST = [f"{'r' * 50}{i:02d}@{'d' * 30}.example.com" for i in range(45)]


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"html": "<p>a\u0000b</p>"}, "html", "must not contain NUL characters"),
        ({"text": "a\u0000b"}, "text", "must not contain NUL characters"),
        ({"to": LONG_LIST}, "to", "the addresses are longer than 1000 characters"),
        ({"reply_to": LONG_LIST}, "reply_to", "the addresses are longer than 1000 characters"),
    ],
)
async def test_unstorable_fields_are_validation_errors(
    app_client, make_account, smtp_sink, fields, field, message
):
    account = await make_account(sink=smtp_sink)
    body = {"to": "user@example.com", "subject": "Hi", "text": "x", **fields}

    sent = await app_client.post(SEND, json=body, headers=account.headers)
    queued = await app_client.post(BATCH, json={"messages": [body]}, headers=account.headers)

    assert sent.status_code == 400, sent.text
    assert {"field": field, "message": message} in sent.json()["error"]["details"]
    assert queued.status_code == 200, queued.text
    [item] = queued.json()["data"]["messages"]
    assert item["status"] == "failed"
    assert {"field": f"messages.0.{field}", "message": message} in item["details"]
    assert smtp_sink.messages == []


async def test_a_status_id_with_nul_is_not_found(app_client, make_account):
    account = await make_account()
    response = await app_client.get("/api/v1/mail/status/abc%00def", headers=account.headers)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"
