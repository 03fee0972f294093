"""SEND_FAILED, NO_SMTP_PROVIDER and what gets recorded when the provider refuses."""

from __future__ import annotations

import pytest

REQUEST = {"to": "user@example.com", "subject": "Hello", "text": "Hi"}


@pytest.mark.parametrize(
    ("reply", "code"),
    [("550 5.7.1 Message rejected as spam", 550), ("451 4.3.0 Try again later", 451)],
)
async def test_provider_refusal_answers_send_failed_and_records_the_reply(
    app_client, make_account, make_smtp_sink, reply, code
):
    sink = await make_smtp_sink(data_replies=[reply])
    account = await make_account(sink=sink)

    response = await app_client.post("/api/v1/mail/send", json=REQUEST, headers=account.headers)

    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "SEND_FAILED"
    assert reply in error["message"]
    assert error["details"][0]["smtp_code"] == code
    assert "Traceback" not in response.text

    # The failed message is on record with the provider's reply, and gave its limit slot back.
    import sqlalchemy as sa

    from mailpass.storage.tables import messages

    services = app_client.app.state.services
    async with services.database.read() as connection:
        row = (await connection.execute(sa.select(messages))).mappings().one()
    assert row["status"] == "failed"
    assert reply in row["error_message"]
    assert row["slot_at"] is None
    status = await app_client.get(
        f"/api/v1/mail/status/{row['message_id']}", headers=account.headers
    )
    assert status.json()["data"]["message"]["status"] == "failed"


async def test_dropped_connection_answers_send_failed(app_client, make_account, make_smtp_sink):
    sink = await make_smtp_sink(drop_on_data=1)
    account = await make_account(sink=sink)
    response = await app_client.post("/api/v1/mail/send", json=REQUEST, headers=account.headers)
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "SEND_FAILED"
    # The next request reconnects and goes through.
    again = await app_client.post("/api/v1/mail/send", json=REQUEST, headers=account.headers)
    assert again.status_code == 200, again.text
    assert len(sink.messages) == 1


async def test_unreachable_provider_answers_send_failed(app_client, make_account, smtp_sink):
    account = await make_account(sink=smtp_sink, provider_options={"host": "127.0.0.1", "port": 1})
    response = await app_client.post("/api/v1/mail/send", json=REQUEST, headers=account.headers)
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "SEND_FAILED"


async def test_wrong_provider_password_answers_send_failed(
    app_client, make_account, make_smtp_sink
):
    sink = await make_smtp_sink(tls_mode="starttls", auth={"mailer": "right"}, require_auth=True)
    account = await make_account(
        sink=sink, provider_options={"username": "mailer", "password": "wrong"}
    )
    response = await app_client.post("/api/v1/mail/send", json=REQUEST, headers=account.headers)
    assert response.status_code == 500
    assert "535" in response.json()["error"]["message"]
    assert sink.messages == []


async def test_no_default_provider(app_client, make_account):
    account = await make_account(sink=None)
    response = await app_client.post("/api/v1/mail/send", json=REQUEST, headers=account.headers)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "NO_SMTP_PROVIDER"


async def test_unexpected_error_is_an_envelope_without_a_traceback(
    app_client, make_account, smtp_sink, monkeypatch
):
    account = await make_account(sink=smtp_sink)

    def explode(*_args, **_kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr("mailpass.messages.service.compose", explode)
    response = await app_client.post("/api/v1/mail/send", json=REQUEST, headers=account.headers)
    assert response.status_code == 500
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == "INTERNAL_ERROR"
    assert "secret internal detail" not in response.text
    assert "Traceback" not in response.text


async def test_a_send_interrupted_by_a_bug_is_recorded_as_failed(
    app_client, make_account, smtp_sink, monkeypatch
):
    account = await make_account(sink=smtp_sink)

    class Broken:
        async def send(self, *args, **kwargs):
            raise RuntimeError("a bug in the transport")

    services = app_client.app.state.services
    monkeypatch.setattr(services.transports, "get", lambda provider: Broken())
    response = await app_client.post("/api/v1/mail/send", json=REQUEST, headers=account.headers)

    assert response.status_code == 500
    assert response.json()["error"]["code"] == "INTERNAL_ERROR"
    assert "Traceback" not in response.text
    assert "a bug" not in response.text
    import sqlalchemy as sa

    from mailpass.storage.tables import messages

    async with services.database.read() as connection:
        row = (await connection.execute(sa.select(messages))).mappings().one()
    assert (row["status"], row["error_message"]) == (
        "failed",
        "interrupted before the provider answered",
    )
