"""``Idempotency-Key`` on /send and /send-batch, through the real app, a real SMTP server and
both databases: a retried request is answered again, never sent again."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import orjson
import pytest
import sqlalchemy as sa

from mailpass.idempotency import claim_key, request_fingerprint
from mailpass.storage.tables import idempotency_keys, messages

SEND = "/api/v1/mail/send"
BATCH = "/api/v1/mail/send-batch"
REQUEST = {"to": "user@example.com", "subject": "Your receipt", "text": "Thanks!"}


async def shift_times(database, by: timedelta, *columns: str) -> None:
    """Move the stored times of every key, as if that much time had passed (``by`` < 0)."""
    async with database.transaction() as connection:
        rows = (await connection.execute(sa.select(idempotency_keys))).mappings().all()
        for row in rows:
            await connection.execute(
                idempotency_keys.update()
                .where(idempotency_keys.c.id == row["id"])
                .values({column: row[column] + by for column in columns})
            )


def keyed(account, key):
    return {**account.headers, "Idempotency-Key": key}


async def message_rows(app_client):
    async with app_client.app.state.services.database.read() as connection:
        return (await connection.execute(sa.select(messages))).mappings().all()


async def key_rows(app_client):
    async with app_client.app.state.services.database.read() as connection:
        return (await connection.execute(sa.select(idempotency_keys))).mappings().all()


async def test_a_retry_is_answered_from_the_first_request_and_not_sent_again(
    app_client, make_account, smtp_sink
):
    account = await make_account(sink=smtp_sink)
    first = await app_client.post(SEND, json=REQUEST, headers=keyed(account, "receipt-1"))
    assert first.status_code == 200, first.text
    assert "Idempotent-Replayed" not in first.headers

    # The same object serialised differently is the same request.
    reordered = orjson.dumps(dict(reversed(list(REQUEST.items()))))
    retry = await app_client.post(
        SEND,
        content=b"  " + reordered,
        headers={**keyed(account, "receipt-1"), "Content-Type": "application/json"},
    )

    assert retry.status_code == 200
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json() == first.json()
    assert len(smtp_sink.messages) == 1
    assert len(await message_rows(app_client)) == 1


async def test_the_same_key_with_another_body_or_endpoint_is_a_conflict(
    app_client, make_account, smtp_sink
):
    account = await make_account(sink=smtp_sink)
    await app_client.post(SEND, json=REQUEST, headers=keyed(account, "k"))

    other_body = await app_client.post(
        SEND, json={**REQUEST, "subject": "Another"}, headers=keyed(account, "k")
    )
    other_endpoint = await app_client.post(
        BATCH, json={"messages": [REQUEST]}, headers=keyed(account, "k")
    )

    for response in (other_body, other_endpoint):
        assert response.status_code == 409
        error = response.json()["error"]
        assert error["code"] == "IDEMPOTENCY_CONFLICT"
        assert "POST /api/v1/mail/send" in error["message"]
        assert error["details"] == [
            {"field": "Idempotency-Key", "message": "used for a different request"}
        ]
    assert len(smtp_sink.messages) == 1


async def test_keys_are_scoped_per_account(app_client, make_account, smtp_sink):
    alice = await make_account("alice@example.com", sink=smtp_sink)
    bob = await make_account("bob@example.com", sink=smtp_sink)

    for account in (alice, bob):
        response = await app_client.post(SEND, json=REQUEST, headers=keyed(account, "shared"))
        assert response.status_code == 200, response.text
        assert "Idempotent-Replayed" not in response.headers
    assert len(smtp_sink.messages) == 2


async def test_a_second_request_while_the_first_runs_is_in_progress(
    app_client, make_account, make_smtp_sink
):
    sink = await make_smtp_sink(delay_data=1.0)  # the provider takes a second to confirm
    account = await make_account(sink=sink)

    first = asyncio.create_task(app_client.post(SEND, json=REQUEST, headers=keyed(account, "slow")))
    await sink.wait_for(1)  # the first request is now waiting for the provider's reply
    second = await app_client.post(SEND, json=REQUEST, headers=keyed(account, "slow"))

    assert second.status_code == 409
    assert second.json()["error"]["code"] == "IDEMPOTENCY_IN_PROGRESS"
    assert second.headers["Retry-After"] == "1"
    first_response = await first
    assert first_response.status_code == 200
    third = await app_client.post(SEND, json=REQUEST, headers=keyed(account, "slow"))
    assert third.headers["Idempotent-Replayed"] == "true"
    assert third.json() == first_response.json()
    assert len(sink.messages) == 1


async def test_simultaneous_requests_with_one_key_send_once(
    app_client, make_account, make_smtp_sink
):
    sink = await make_smtp_sink(delay_data=0.2)
    account = await make_account(sink=sink)

    responses = await asyncio.gather(
        *(app_client.post(SEND, json=REQUEST, headers=keyed(account, "burst")) for _ in range(8))
    )

    codes = sorted("sent" if r.status_code == 200 else r.json()["error"]["code"] for r in responses)
    assert codes.count("sent") >= 1
    assert set(codes) <= {"sent", "IDEMPOTENCY_IN_PROGRESS"}
    sent_ids = {r.json()["data"]["message_id"] for r in responses if r.status_code == 200}
    assert len(sent_ids) == 1  # any 200 besides the first is its replay
    assert len(sink.messages) == 1


async def test_send_failed_is_kept_so_a_retry_does_not_reach_the_provider_again(
    app_client, make_account, make_smtp_sink
):
    # Dropped after the whole message went over: the provider may have delivered it.
    sink = await make_smtp_sink(drop_on_data=1)
    account = await make_account(sink=sink)

    first = await app_client.post(SEND, json=REQUEST, headers=keyed(account, "once"))
    assert first.json()["error"]["code"] == "SEND_FAILED"
    connections = sink.connections_opened
    retry = await app_client.post(SEND, json=REQUEST, headers=keyed(account, "once"))

    assert retry.status_code == 500
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json() == first.json()
    assert sink.connections_opened == connections
    assert [row["status"] for row in await message_rows(app_client)] == ["failed"]


async def test_an_answer_that_sent_nothing_lets_the_key_go(app_client, make_account, smtp_sink):
    account = await make_account(sink=None)  # no provider yet
    first = await app_client.post(SEND, json=REQUEST, headers=keyed(account, "later"))
    assert first.json()["error"]["code"] == "NO_SMTP_PROVIDER"
    assert await key_rows(app_client) == []

    from mailpass.config import load_instance_secret
    from mailpass.providers import service as providers
    from mailpass.providers.secrets import SecretBox

    services = app_client.app.state.services
    await providers.add_provider(
        services.database,
        SecretBox(load_instance_secret(services.settings)),
        account.user,
        providers.NewProvider(
            name="relay",
            kind="smtp",
            host="127.0.0.1",
            port=smtp_sink.port,
            security="none",
            from_email="sender@shop.example",
            make_default=True,
        ),
    )
    retry = await app_client.post(SEND, json=REQUEST, headers=keyed(account, "later"))

    assert retry.status_code == 200, retry.text
    assert "Idempotent-Replayed" not in retry.headers
    assert len(smtp_sink.messages) == 1


async def test_an_invalid_body_is_not_kept(app_client, make_account, smtp_sink):
    account = await make_account(sink=smtp_sink)
    for _ in range(2):
        response = await app_client.post(
            SEND, json={"subject": "no recipient"}, headers=keyed(account, "bad")
        )
        assert response.status_code == 400
        assert "Idempotent-Replayed" not in response.headers
    assert await key_rows(app_client) == []


async def test_a_bug_after_the_mail_left_is_kept(app_client, make_account, smtp_sink, monkeypatch):
    account = await make_account(sink=smtp_sink)

    async def broken(*args, **kwargs):
        raise KeyError("a bug in recording it")

    # The provider accepts the mail, then recording that fails for a reason no retry cures.
    monkeypatch.setattr("mailpass.messages.service.repository.mark_sent", broken)
    first = await app_client.post(SEND, json=REQUEST, headers=keyed(account, "fragile"))
    monkeypatch.undo()
    retry = await app_client.post(SEND, json=REQUEST, headers=keyed(account, "fragile"))

    assert first.status_code == 500
    assert first.json()["error"]["code"] == "INTERNAL_ERROR"
    assert "Traceback" not in first.text
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json() == first.json()
    assert len(smtp_sink.messages) == 1


async def test_a_database_gone_after_the_mail_left_still_answers_sent(
    app_client, make_account, smtp_sink, monkeypatch
):
    account = await make_account(sink=smtp_sink)

    async def database_gone(*args, **kwargs):
        raise ConnectionResetError("the database went away")

    # The provider accepts the mail, then the database cannot note it: the answer is the
    # provider's, kept for the key, and the mark is written once the database is back.
    monkeypatch.setattr("mailpass.messages.service.repository.mark_sent", database_gone)
    first = await app_client.post(SEND, json=REQUEST, headers=keyed(account, "fragile"))
    monkeypatch.undo()
    retry = await app_client.post(SEND, json=REQUEST, headers=keyed(account, "fragile"))

    assert first.status_code == 200
    assert first.json()["data"]["status"] == "sent"
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json() == first.json()
    assert len(smtp_sink.messages) == 1


async def test_keys_are_forgotten_after_24_hours(app_client, make_account, smtp_sink):
    account = await make_account(sink=smtp_sink)
    await app_client.post(SEND, json=REQUEST, headers=keyed(account, "daily"))
    services = app_client.app.state.services

    async def age_keys(hours: float) -> None:
        await shift_times(services.database, timedelta(hours=-hours), "created_at", "expires_at")

    await age_keys(23.9)
    still_kept = await app_client.post(
        SEND, json={**REQUEST, "subject": "Tomorrow's"}, headers=keyed(account, "daily")
    )
    assert still_kept.json()["error"]["code"] == "IDEMPOTENCY_CONFLICT"

    await age_keys(0.2)
    reused = await app_client.post(
        SEND, json={**REQUEST, "subject": "Tomorrow's"}, headers=keyed(account, "daily")
    )
    assert reused.status_code == 200, reused.text
    assert "Idempotent-Replayed" not in reused.headers
    assert len(smtp_sink.messages) == 2
    assert len(await key_rows(app_client)) == 1  # the old record is gone


async def test_a_key_whose_request_died_is_usable_once_its_lease_ran_out(
    app_client, make_account, smtp_sink
):
    account = await make_account(sink=smtp_sink)
    services = app_client.app.state.services
    # A server that claimed the key and was killed before answering.
    await claim_key(
        services.database,
        user_id=account.user.id,
        test=False,
        key="orphan",
        path=SEND,
        fingerprint=request_fingerprint(SEND, orjson.dumps(REQUEST)),
    )

    blocked = await app_client.post(SEND, json=REQUEST, headers=keyed(account, "orphan"))
    assert blocked.json()["error"]["code"] == "IDEMPOTENCY_IN_PROGRESS"
    assert smtp_sink.messages == []

    await shift_times(services.database, -timedelta(minutes=6), "locked_until")
    taken_over = await app_client.post(SEND, json=REQUEST, headers=keyed(account, "orphan"))
    assert taken_over.status_code == 200, taken_over.text
    replay = await app_client.post(SEND, json=REQUEST, headers=keyed(account, "orphan"))
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert len(smtp_sink.messages) == 1


async def test_a_batch_retry_queues_nothing_new(app_client, make_account, smtp_sink):
    account = await make_account(sink=smtp_sink)
    batch = {"messages": [REQUEST, {**REQUEST, "to": "other@example.com"}, {"to": "bad"}]}

    first = await app_client.post(BATCH, json=batch, headers=keyed(account, "nightly"))
    retry = await app_client.post(BATCH, json=batch, headers=keyed(account, "nightly"))

    assert first.status_code == 200, first.text
    assert (first.json()["data"]["queued"], first.json()["data"]["failed"]) == (2, 1)
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json() == first.json()
    assert len(await message_rows(app_client)) == 2


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("", "must not be empty"),
        ("k" * 257, "is longer than 256 characters"),
        ("caf\u00e9", "may only hold printable ASCII characters"),
    ],
)
async def test_a_malformed_key_is_a_validation_error(
    app_client, make_account, smtp_sink, key, problem
):
    account = await make_account(sink=smtp_sink)
    response = await app_client.post(
        SEND,
        content=orjson.dumps(REQUEST),
        headers=[
            ("Authorization", account.headers["Authorization"]),
            ("Idempotency-Key", key.encode("latin-1")),
        ],
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert error["details"] == [{"field": "Idempotency-Key", "message": problem}]
    assert smtp_sink.messages == []


async def test_a_key_of_256_printable_characters_is_fine(app_client, make_account, smtp_sink):
    account = await make_account(sink=smtp_sink)
    key = ("order 42/receipt~" * 16)[:256]
    first = await app_client.post(SEND, json=REQUEST, headers=keyed(account, key))
    retry = await app_client.post(SEND, json=REQUEST, headers=keyed(account, key))
    assert first.status_code == 200, first.text
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert len(smtp_sink.messages) == 1


async def test_requests_without_a_key_are_not_deduplicated(app_client, make_account, smtp_sink):
    account = await make_account(sink=smtp_sink)
    for _ in range(2):
        response = await app_client.post(SEND, json=REQUEST, headers=account.headers)
        assert response.status_code == 200
    assert len(smtp_sink.messages) == 2
    assert await key_rows(app_client) == []


async def test_test_keys_and_live_keys_do_not_share_answers(
    app_client, make_account, smtp_sink, database
):
    from mailpass.accounts import service as accounts

    account = await make_account(sink=smtp_sink)
    test_key = (await accounts.create_key(database, account.user, test=True)).key

    captured = await app_client.post(
        SEND, json=REQUEST, headers={"Authorization": f"Bearer {test_key}", "Idempotency-Key": "k"}
    )
    live = await app_client.post(SEND, json=REQUEST, headers=keyed(account, "k"))

    assert captured.status_code == live.status_code == 200
    assert "Idempotent-Replayed" not in live.headers
    assert live.json()["data"]["message_id"] != captured.json()["data"]["message_id"]
    assert len(smtp_sink.messages) == 1  # the live one; the test one stayed in the capture inbox
