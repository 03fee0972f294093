"""Bad input: a clear VALIDATION_ERROR in the seed's envelope, nothing recorded, nothing sent."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from mailpass.storage.tables import messages

VALID = {"to": "user@example.com", "subject": "Hello", "html": "<p>Hi</p>"}


def with_(**changes):
    body = dict(VALID)
    for key, value in changes.items():
        if value is ...:
            body.pop(key)
        else:
            body[key] = value
    return body


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (with_(to=...), "to"),
        (with_(to="not-an-address"), "to"),
        (with_(to="a@b@example.com"), "to"),
        (with_(to=123), "to"),
        (with_(subject=...), "subject"),
        (with_(subject="   "), "subject"),
        (with_(html=...), "html"),
        (with_(html=None, text=""), "html"),
        (with_(cc=["ok@example.com", "broken"]), "cc.1"),
        (with_(bcc="nope"), "bcc"),
        (with_(reply_to="x"), "reply_to"),
        (with_(from_email="bad address"), "from_email"),
        (with_(tags="order"), "tags"),
        (with_(tags=[""]), "tags.0"),
        (with_(metadata=["a"]), "metadata"),
        (with_(to=[f"u{i}@example.com" for i in range(51)]), "to"),
        (with_(to="ユーザー@example.com"), "to"),
    ],
)
async def test_invalid_fields_are_named(app_client, make_account, smtp_sink, body, field):
    account = await make_account(sink=smtp_sink)
    response = await app_client.post("/api/v1/mail/send", json=body, headers=account.headers)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert response.json()["success"] is False
    assert error["code"] == "VALIDATION_ERROR"
    assert field in [detail["field"] for detail in error["details"]], error
    assert smtp_sink.messages == []


NOT_ADDRESSES = "must be an address or a list of addresses"


@pytest.mark.parametrize(
    ("body", "details"),
    [
        (with_(to=123), [{"field": "to", "message": NOT_ADDRESSES}]),
        (with_(cc={"a": "b@example.com"}), [{"field": "cc", "message": NOT_ADDRESSES}]),
        (with_(reply_to=True), [{"field": "reply_to", "message": NOT_ADDRESSES}]),
        (
            with_(bcc=["ok@example.com", 5]),
            [{"field": "bcc.1", "message": "Input should be a valid string"}],
        ),
    ],
)
async def test_an_address_field_of_the_wrong_type_is_named_once(
    app_client, make_account, smtp_sink, body, details
):
    """Such a field takes a string or a list: pydantic rejects the value once for each, and the
    client hears one problem, where it is."""
    account = await make_account(sink=smtp_sink)
    response = await app_client.post("/api/v1/mail/send", json=body, headers=account.headers)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["details"] == details


async def test_a_batch_item_with_an_address_field_of_the_wrong_type(
    app_client, make_account, smtp_sink
):
    account = await make_account(sink=smtp_sink)
    batch = {"messages": [VALID, with_(to={"email": "user@example.com"})]}
    response = await app_client.post("/api/v1/mail/send-batch", json=batch, headers=account.headers)
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert (data["queued"], data["failed"]) == (1, 1)
    assert data["messages"][1]["details"] == [{"field": "messages.1.to", "message": NOT_ADDRESSES}]


@pytest.mark.parametrize(
    "injected",
    [
        {"subject": "Hello\r\nBcc: victim@example.com"},
        {"subject": "Hello\nX-Injected: 1"},
        {"from_name": "Shop\r\nBcc: victim@example.com"},
        {"to": "user@example.com\r\nBcc: victim@example.com"},
        {"cc": ["cc@example.com\nBcc: victim@example.com"]},
        {"reply_to": "reply@example.com\rX: y"},
        {"from_email": "shop@example.com\r\nBcc: victim@example.com"},
        {"to": "Victim\r\n <user@example.com>"},
    ],
)
async def test_header_injection_reaches_no_smtp_server(
    app_client, make_account, smtp_sink, injected
):
    account = await make_account(sink=smtp_sink)
    response = await app_client.post(
        "/api/v1/mail/send", json={**VALID, **injected}, headers=account.headers
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    assert smtp_sink.messages == []
    assert smtp_sink.connections_opened == 0
    services = app_client.app.state.services
    async with services.database.read() as connection:
        count = (
            await connection.execute(sa.select(sa.func.count()).select_from(messages))
        ).scalar()
    assert count == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"{not json", "not valid JSON"),
        (b'["to", "subject"]', "JSON object"),
        (b'"just a string"', "JSON object"),
        (b"\xff\xfe", "not valid JSON"),
    ],
)
async def test_malformed_bodies(app_client, make_account, smtp_sink, content, message):
    account = await make_account(sink=smtp_sink)
    response = await app_client.post(
        "/api/v1/mail/send",
        content=content,
        headers={**account.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    assert message in response.json()["error"]["message"]


async def test_all_problems_are_reported_at_once(app_client, make_account, smtp_sink):
    account = await make_account(sink=smtp_sink)
    response = await app_client.post(
        "/api/v1/mail/send", json={"to": "bad", "cc": ["worse"]}, headers=account.headers
    )
    fields = {detail["field"] for detail in response.json()["error"]["details"]}
    assert {"to", "cc.0", "subject", "html"} <= fields


async def test_body_over_the_limit_is_413(settings, database, make_account, smtp_sink):
    import httpx

    from mailpass.api.app import create_app

    settings.max_body_bytes = 2000
    app = create_app(settings)
    account = await make_account(sink=smtp_sink)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        response = await client.post(
            "/api/v1/mail/send",
            json={**VALID, "html": "x" * 5000},
            headers=account.headers,
        )

        async def chunks():
            for _ in range(10):
                yield b"x" * 500

        streamed = await client.post("/api/v1/mail/send", content=chunks(), headers=account.headers)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert streamed.status_code == 413
    assert streamed.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert smtp_sink.messages == []


async def test_unknown_route_and_method_use_the_envelope(app_client):
    response = await app_client.get("/api/v1/nope")
    assert response.status_code == 404
    assert response.json() == {
        "success": False,
        "error": {"code": "NOT_FOUND", "message": "no route GET /api/v1/nope"},
    }
    wrong_method = await app_client.get("/api/v1/mail/send")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["success"] is False


async def test_healthz(app_client):
    response = await app_client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"success": True, "data": {"status": "ok"}}


async def test_a_client_that_hangs_up_mid_body_is_not_a_server_error(
    app_client, make_account, smtp_sink, caplog
):
    account = await make_account(sink=smtp_sink)
    app = app_client.app
    sent = []

    async def receive():
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/mail/send",
        "raw_path": b"/api/v1/mail/send",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"authorization", account.headers["Authorization"].encode()),
            (b"content-type", b"application/json"),
            (b"content-length", b"100"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    with caplog.at_level("INFO"):
        await app(scope, receive, send)
    assert sent[0]["status"] == 400
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
    assert "client disconnected" in caplog.text
    assert smtp_sink.messages == []
