"""Keys, permissions, revocation, tenant isolation and the status endpoint's id forms."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from mailpass.accounts import service as accounts

REQUEST = {"to": "user@example.com", "subject": "Hello", "text": "Hi"}


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer mp_live_doesnotexist000000000000000000", "Basic abc", "Bearer junk"],
)
async def test_missing_or_unknown_keys_are_unauthorized(app_client, header):
    headers = {"Authorization": header} if header else {}
    response = await app_client.post("/api/v1/mail/send", json=REQUEST, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "UNAUTHORIZED"


async def test_key_without_mail_permission_is_forbidden(app_client, make_account, smtp_sink):
    account = await make_account(sink=smtp_sink, permissions=["providers"])
    response = await app_client.post("/api/v1/mail/send", json=REQUEST, headers=account.headers)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "FORBIDDEN"
    assert smtp_sink.messages == []


async def test_revoked_key_is_refused_at_once(app_client, make_account, smtp_sink, database):
    account = await make_account(sink=smtp_sink)
    ok = await app_client.post("/api/v1/mail/send", json=REQUEST, headers=account.headers)
    assert ok.status_code == 200
    async with database.read() as connection:
        from mailpass.accounts.repository import list_keys

        (key,) = await list_keys(connection, account.user.id)
    assert key.last_used_at is not None
    await accounts.revoke_key(database, key.id)
    refused = await app_client.post("/api/v1/mail/send", json=REQUEST, headers=account.headers)
    assert refused.status_code == 401
    assert "revoked" in refused.json()["error"]["message"]
    assert len(smtp_sink.messages) == 1


async def test_status_accepts_every_form_of_the_id(app_client, make_account, smtp_sink):
    account = await make_account(sink=smtp_sink)
    sent = await app_client.post("/api/v1/mail/send", json=REQUEST, headers=account.headers)
    message_id = sent.json()["data"]["message_id"]
    bare = message_id.strip("<>")
    for form in (
        message_id,
        bare,
        quote(message_id, safe=""),
        quote(bare, safe=""),
        quote(quote(message_id, safe=""), safe=""),
    ):
        response = await app_client.get(f"/api/v1/mail/status/{form}", headers=account.headers)
        assert response.status_code == 200, (form, response.text)
        data = response.json()["data"]
        assert data["message"]["message_id"] == message_id
        assert data["message"]["to_email"] == "user@example.com"
        assert data["message"]["subject"] == "Hello"
        (sent,) = data["events"]  # sent through the sink at once: its one event
        assert (sent["event_type"], sent["attempt"]) == ("sent", 1)
        assert sent["smtp_reply"].startswith("250")
        # The seed's time format: ISO 8601, UTC, to the second.
        assert len(data["message"]["created_at"]) == len("2026-01-30T12:00:00")


async def test_another_accounts_message_is_not_found(app_client, make_account, smtp_sink):
    alice = await make_account("alice@example.com", sink=smtp_sink)
    bob = await make_account("bob@example.com", sink=smtp_sink)
    sent = await app_client.post("/api/v1/mail/send", json=REQUEST, headers=alice.headers)
    message_id = sent.json()["data"]["message_id"]

    theirs = await app_client.get(f"/api/v1/mail/status/{message_id}", headers=bob.headers)
    unknown = await app_client.get("/api/v1/mail/status/<nope.1@x>", headers=bob.headers)

    assert theirs.status_code == unknown.status_code == 404
    assert theirs.json()["error"]["code"] == "NOT_FOUND"
    # Indistinguishable from an unknown id, apart from the id itself.
    assert theirs.json()["error"]["message"].replace(message_id, "ID") == unknown.json()["error"][
        "message"
    ].replace("<nope.1@x>", "ID")


async def test_each_account_sends_through_its_own_provider(
    app_client, make_account, make_smtp_sink
):
    sink_a = await make_smtp_sink()
    sink_b = await make_smtp_sink()
    alice = await make_account("alice@example.com", sink=sink_a)
    bob = await make_account("bob@example.com", sink=sink_b)
    await app_client.post("/api/v1/mail/send", json=REQUEST, headers=alice.headers)
    await app_client.post("/api/v1/mail/send", json=REQUEST, headers=bob.headers)
    await app_client.post("/api/v1/mail/send", json=REQUEST, headers=bob.headers)
    assert (len(sink_a.messages), len(sink_b.messages)) == (1, 2)


async def test_status_refuses_the_key_before_telling_about_the_message(
    app_client, make_account, smtp_sink, database
):
    # /status reads the key in the same query as the message: a key that may not read must
    # get 401 or 403 whether the message exists or not, never the message nor a 404.
    owner = await make_account("owner@example.com", sink=smtp_sink)
    reader = await make_account("reader@example.com", sink=smtp_sink, permissions=["providers"])
    sent = await app_client.post("/api/v1/mail/send", json=REQUEST, headers=owner.headers)
    message_id = sent.json()["data"]["message_id"]
    unknown = "<nope.2@x>"
    with_nul = quote("<a\x00b@x>", safe="")

    async def codes(headers: dict[str, str]) -> list[tuple[int, str]]:
        answers = [
            await app_client.get(f"/api/v1/mail/status/{form}", headers=headers)
            for form in (message_id, unknown, with_nul)
        ]
        return [(answer.status_code, answer.json()["error"]["code"]) for answer in answers]

    forbidden = [(403, "FORBIDDEN")] * 3
    assert await codes(reader.headers) == forbidden
    assert (
        await codes({"Authorization": "Bearer mp_live_" + "0" * 43}) == [(401, "UNAUTHORIZED")] * 3
    )
    own = await app_client.get(f"/api/v1/mail/status/{with_nul}", headers=owner.headers)
    assert own.status_code == 404

    async with database.read() as connection:
        from mailpass.accounts.repository import list_keys

        (key,) = await list_keys(connection, owner.user.id)
    await accounts.revoke_key(database, key.id)
    assert await codes(owner.headers) == [(401, "UNAUTHORIZED")] * 3


async def test_send_batch_refuses_revoked_and_unpermitted_keys(
    app_client, make_account, smtp_sink, database
):
    batch = {"messages": [REQUEST]}
    reader = await make_account("reader@example.com", sink=smtp_sink, permissions=["providers"])
    refused = await app_client.post("/api/v1/mail/send-batch", json=batch, headers=reader.headers)
    assert refused.status_code == 403

    owner = await make_account("owner@example.com", sink=smtp_sink)
    async with database.read() as connection:
        from mailpass.accounts.repository import list_keys

        (key,) = await list_keys(connection, owner.user.id)
    await accounts.revoke_key(database, key.id)
    revoked = await app_client.post("/api/v1/mail/send-batch", json=batch, headers=owner.headers)
    assert revoked.status_code == 401
    assert "revoked" in revoked.json()["error"]["message"]
