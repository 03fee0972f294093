"""The suppression list: managed through /api/v1/suppressions, and obeyed by /send and
/send-batch, against a real SMTP server on both databases."""

from __future__ import annotations

import sqlalchemy as sa

from mailpass.storage.tables import messages

ITEM = {"subject": "Hello", "text": "Hi"}


async def suppress(app_client, account, email: str, **fields):  # type: ignore[no-untyped-def]
    answer = await app_client.post(
        "/api/v1/suppressions", json={"email": email, **fields}, headers=account.headers
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


async def listed(app_client, account, query: str = "") -> dict:  # type: ignore[no-untyped-def]
    answer = await app_client.get(f"/api/v1/suppressions{query}", headers=account.headers)
    assert answer.status_code == 200, answer.text
    data: dict = answer.json()["data"]
    return data


async def stored_messages(database) -> int:  # type: ignore[no-untyped-def]
    async with database.read() as connection:
        return int(
            (
                await connection.execute(sa.select(sa.func.count()).select_from(messages))
            ).scalar_one()
        )


async def test_a_suppressed_recipient_is_refused_and_nothing_is_sent(
    app_client, make_account, smtp_sink, database
):
    account = await make_account(sink=smtp_sink)
    assert await suppress(app_client, account, "Gone@Example.com") == {
        "email": "gone@example.com",
        "reason": "manual",
        "added": True,
    }
    answer = await app_client.post(
        "/api/v1/mail/send",
        json={**ITEM, "to": ["ok@example.com", "GONE@example.com"]},
        headers=account.headers,
    )
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "RECIPIENT_SUPPRESSED"
    assert "GONE@example.com (manual)" in error["message"]
    assert error["details"] == [{"field": "to", "email": "GONE@example.com", "reason": "manual"}]
    assert smtp_sink.messages == []
    assert await stored_messages(database) == 0

    # Taken off the list, it is sent to again.
    removed = await app_client.delete(
        "/api/v1/suppressions/GONE@example.com", headers=account.headers
    )
    assert removed.status_code == 200, removed.text
    assert removed.json()["data"] == {"email": "gone@example.com", "removed": True}
    again = await app_client.post(
        "/api/v1/mail/send", json={**ITEM, "to": "gone@example.com"}, headers=account.headers
    )
    assert again.status_code == 200, again.text
    assert [m.rcpt_tos for m in smtp_sink.messages] == [["gone@example.com"]]


async def test_suppressed_cc_and_bcc_are_left_out_and_named(app_client, make_account, smtp_sink):
    account = await make_account(sink=smtp_sink)
    await suppress(app_client, account, "cc-gone@example.com", reason="complaint")
    await suppress(app_client, account, "bcc-gone@example.com", reason="hard_bounce")
    answer = await app_client.post(
        "/api/v1/mail/send",
        json={
            **ITEM,
            "to": "user@example.com",
            "cc": ["cc-ok@example.com", "CC-gone@example.com"],
            "bcc": ["bcc-gone@example.com"],
        },
        headers=account.headers,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"]["suppressed"] == ["CC-gone@example.com", "bcc-gone@example.com"]
    [received] = smtp_sink.messages
    assert received.rcpt_tos == ["user@example.com", "cc-ok@example.com"]
    assert received.message["Cc"] == "cc-ok@example.com"


async def test_a_batch_item_to_a_suppressed_address_fails_alone(
    app_client, make_account, smtp_sink
):
    account = await make_account(sink=smtp_sink)
    await suppress(app_client, account, "gone@example.com")
    answer = await app_client.post(
        "/api/v1/mail/send-batch",
        json={
            "messages": [
                {**ITEM, "to": "one@example.com"},
                {**ITEM, "to": "gone@example.com"},
                {**ITEM, "to": "two@example.com", "bcc": "gone@example.com"},
                {**ITEM, "to": "not an address"},
            ]
        },
        headers=account.headers,
    )
    assert answer.status_code == 200, answer.text
    data = answer.json()["data"]
    assert (data["queued"], data["failed"]) == (2, 2)
    first, suppressed, third, invalid = data["messages"]
    assert first["status"] == "queued"
    assert "suppressed" not in first
    assert (suppressed["status"], suppressed["code"]) == ("failed", "RECIPIENT_SUPPRESSED")
    assert suppressed["details"] == [
        {"field": "to", "email": "gone@example.com", "reason": "manual"}
    ]
    assert third["suppressed"] == ["gone@example.com"]
    assert (invalid["status"], invalid["code"]) == ("failed", "VALIDATION_ERROR")

    await app_client.app.state.services.worker().run(until_idle=True)
    assert sorted(m.rcpt_tos[0] for m in smtp_sink.messages) == [
        "one@example.com",
        "two@example.com",
    ]
    assert all(m.rcpt_tos == [m.rcpt_tos[0]] for m in smtp_sink.messages)


async def test_the_list_is_paged_searched_and_kept_per_account(app_client, make_account):
    account = await make_account()
    other = await make_account("other@example.com")
    for index in range(5):
        await suppress(app_client, account, f"user{index}@example.com")
    await suppress(app_client, account, "someone@else.example", reason="unsubscribe")
    assert (await suppress(app_client, account, "USER1@example.com"))["added"] is False

    first = await listed(app_client, account, "?limit=4")
    assert [s["email"] for s in first["suppressions"]] == [
        "someone@else.example",
        "user4@example.com",
        "user3@example.com",
        "user2@example.com",
    ]
    assert first["suppressions"][0]["reason"] == "unsubscribe"
    assert first["suppressions"][0]["message_id"] is None
    rest = await listed(app_client, account, f"?limit=4&cursor={first['next_cursor']}")
    assert [s["email"] for s in rest["suppressions"]] == ["user1@example.com", "user0@example.com"]
    assert rest["next_cursor"] is None
    found = await listed(app_client, account, "?search=ELSE")
    assert [s["email"] for s in found["suppressions"]] == ["someone@else.example"]

    # Another account has its own list, and cannot touch this one.
    assert await listed(app_client, other) == {"suppressions": [], "next_cursor": None}
    gone = await app_client.delete("/api/v1/suppressions/user0@example.com", headers=other.headers)
    assert (gone.status_code, gone.json()["error"]["code"]) == (404, "NOT_FOUND")
    assert len((await listed(app_client, account))["suppressions"]) == 6


async def test_the_list_needs_its_own_permission_and_good_input(app_client, make_account):
    mail_only = await make_account(permissions=["mail"])
    for answer in (
        await app_client.get("/api/v1/suppressions", headers=mail_only.headers),
        await app_client.post(
            "/api/v1/suppressions", json={"email": "a@example.com"}, headers=mail_only.headers
        ),
        await app_client.delete("/api/v1/suppressions/a@example.com", headers=mail_only.headers),
    ):
        assert (answer.status_code, answer.json()["error"]["code"]) == (403, "FORBIDDEN")
    assert (await app_client.get("/api/v1/suppressions")).status_code == 401

    account = await make_account("admin@example.com", permissions=["suppressions"])
    for body, field in (
        ({"email": "not an address"}, "email"),
        ({"email": "Name <a@example.com>"}, "email"),
        ({"email": "a@example.com", "reason": "because"}, "reason"),
        ({"email": "a@example.com", "reasn": "manual"}, "reasn"),
        ({}, "email"),
    ):
        answer = await app_client.post("/api/v1/suppressions", json=body, headers=account.headers)
        assert answer.status_code == 400, (body, answer.text)
        error = answer.json()["error"]
        assert error["code"] == "VALIDATION_ERROR"
        assert [detail["field"] for detail in error["details"]] == [field], error
    for query in ("?limit=0", "?limit=501", "?limit=x", "?cursor=-1"):
        answer = await app_client.get(f"/api/v1/suppressions{query}", headers=account.headers)
        assert answer.status_code == 400, (query, answer.text)
    assert (await listed(app_client, account))["suppressions"] == []
