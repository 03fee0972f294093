"""POST /api/v1/mail/send-batch: the seed's request and answer, defaults, per-item failures."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from mailpass.storage.tables import messages

SEED_BATCH = {
    "messages": [
        {"to": "a@example.com", "subject": "Hello A", "html": "<p>Hi A</p>"},
        {"to": "b@example.com", "subject": "Hello B", "html": "<p>Hi B</p>"},
    ],
    "from_email": "support@yourdomain.com",
    "from_name": "Your App",
}


async def stored(app_client):
    async with app_client.app.state.services.database.read() as connection:
        return (
            (await connection.execute(sa.select(messages).order_by(messages.c.id))).mappings().all()
        )


async def test_seed_batch_is_queued_in_order(app_client, make_account, smtp_sink):
    account = await make_account(sink=smtp_sink)
    response = await app_client.post(
        "/api/v1/mail/send-batch", json=SEED_BATCH, headers=account.headers
    )
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert (data["total"], data["queued"], data["failed"]) == (2, 2, 0)
    first, second = data["messages"]
    assert (first["to"], first["status"]) == ("a@example.com", "queued")
    assert (second["to"], second["status"]) == ("b@example.com", "queued")
    assert isinstance(first["queue_id"], int)
    assert second["queue_id"] > first["queue_id"]

    rows = await stored(app_client)
    assert [row["id"] for row in rows] == [first["queue_id"], second["queue_id"]]
    assert [row["message_id"] for row in rows] == [first["message_id"], second["message_id"]]
    assert all(row["status"] == "queued" for row in rows)
    assert smtp_sink.messages == []  # nothing sent before a worker runs

    status = await app_client.get(
        f"/api/v1/mail/status/{first['message_id']}", headers=account.headers
    )
    message = status.json()["data"]["message"]
    assert message["status"] == "queued"
    assert message["queue_id"] == first["queue_id"]
    assert message["from_email"] == "support@yourdomain.com"
    assert message["from_name"] == "Your App"
    assert message["next_attempt_at"] is not None


async def test_defaults_apply_only_where_an_item_sets_nothing(
    app_client, make_account, smtp_sink, drain
):
    account = await make_account(sink=smtp_sink)
    body = {
        "messages": [
            {"to": "a@example.com", "subject": "A", "text": "a"},
            {
                "to": "b@example.com",
                "subject": "B",
                "text": "b",
                "from_email": "own@yourdomain.com",
                "from_name": "Own",
                "reply_to": "own-reply@yourdomain.com",
                "tags": ["own"],
                "metadata": {"k": "own"},
            },
        ],
        "from_email": "default@yourdomain.com",
        "from_name": "Default",
        "reply_to": "reply@yourdomain.com",
        "tags": ["batch"],
        "metadata": {"k": "default"},
    }
    response = await app_client.post("/api/v1/mail/send-batch", json=body, headers=account.headers)
    assert response.json()["data"]["queued"] == 2
    first, second = await stored(app_client)
    assert (first["from_email"], first["from_name"]) == ("default@yourdomain.com", "Default")
    assert first["reply_to"] == "reply@yourdomain.com"
    assert (first["tags"], first["user_metadata"]) == (["batch"], {"k": "default"})
    assert (second["from_email"], second["from_name"]) == ("own@yourdomain.com", "Own")
    assert second["reply_to"] == "own-reply@yourdomain.com"
    assert (second["tags"], second["user_metadata"]) == (["own"], {"k": "own"})
    assert await drain() == 0
    sent = {received.message["Subject"]: received.data for received in smtp_sink.messages}
    assert b"From: Default <default@yourdomain.com>" in sent["A"]
    assert b"From: Own <own@yourdomain.com>" in sent["B"]


async def test_a_bad_item_fails_alone(app_client, make_account, smtp_sink):
    account = await make_account(sink=smtp_sink)
    body = {
        "messages": [
            {"to": "a@example.com", "subject": "ok", "text": "a"},
            {"to": "not-an-address", "subject": "bad", "text": "b"},
            {"to": "c@example.com", "subject": "Hi\r\nBcc: victim@example.com", "text": "c"},
            "not an object",
            {"to": "e@example.com", "subject": 5, "text": "e"},
            {"to": "f@example.com", "subject": "ok too", "html": "<p>f</p>"},
        ]
    }
    response = await app_client.post("/api/v1/mail/send-batch", json=body, headers=account.headers)
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert (data["total"], data["queued"], data["failed"]) == (6, 2, 4)
    statuses = [item["status"] for item in data["messages"]]
    assert statuses == ["queued", "failed", "failed", "failed", "failed", "queued"]
    assert "messages.1.to" in data["messages"][1]["error"]
    assert "messages.2.subject" in data["messages"][2]["error"]
    assert data["messages"][3]["to"] is None
    assert "messages.4.subject" in data["messages"][4]["error"]
    assert "queue_id" not in data["messages"][1]
    rows = await stored(app_client)
    assert [row["to_email"] for row in rows] == ["a@example.com", "f@example.com"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"messages": []}, "1 to 100"),
        ({"messages": [{"to": "a@example.com", "subject": "s", "text": "t"}] * 101}, "1 to 100"),
        ({"messages": {"to": "a@example.com"}}, "invalid"),
        ({}, "invalid"),
        (
            {"messages": [{"to": "a@example.com", "subject": "s", "text": "t"}], "tags": "x"},
            "invalid",
        ),
    ],
)
async def test_a_bad_batch_is_a_validation_error(
    app_client, make_account, smtp_sink, body, fragment
):
    account = await make_account(sink=smtp_sink)
    response = await app_client.post("/api/v1/mail/send-batch", json=body, headers=account.headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    assert fragment in response.json()["error"]["message"]
    assert await stored(app_client) == []


async def test_batch_without_default_provider(app_client, make_account):
    account = await make_account(sink=None)
    response = await app_client.post(
        "/api/v1/mail/send-batch", json=SEED_BATCH, headers=account.headers
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "NO_SMTP_PROVIDER"


async def test_batch_needs_the_mail_permission(app_client, make_account, smtp_sink):
    account = await make_account(sink=smtp_sink, permissions=["keys"])
    response = await app_client.post(
        "/api/v1/mail/send-batch", json=SEED_BATCH, headers=account.headers
    )
    assert response.status_code == 403
