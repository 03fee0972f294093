"""The client's retries and error mapping, with ``httpx.MockTransport`` standing in for the
server (as users of the SDK can do in their own tests)."""

from __future__ import annotations

import json

import httpx
import pytest

from mailpass import (
    APIError,
    AsyncClient,
    Client,
    ConfigurationError,
    InternalServerError,
    SendLimitExceededError,
    ServiceUnavailableError,
)

SENT = {
    "success": True,
    "data": {
        "message_id": "<a.1@x.example>",
        "status": "sent",
        "to": "u@x.example",
        "from": "s@x.example",
    },
}
KEY = "mp_live_" + "k" * 32


def error(code: str, status: int, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"success": False, "error": {"code": code, "message": f"{code} happened"}}
    return httpx.Response(status, json=body, headers=headers)


class Script:
    """Answers requests one after another from a list, and records them."""

    def __init__(self, *answers: httpx.Response) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def client(script: Script, **options) -> Client:
    options.setdefault("retry_backoff", 0.001)
    return Client(
        KEY, base_url="http://mail.test", transport=httpx.MockTransport(script), **options
    )


def test_every_try_of_a_call_is_the_same_request_with_one_key():
    script = Script(
        httpx.Response(502, text="<html>Bad Gateway</html>"),
        httpx.ConnectError("connection refused"),
        httpx.Response(200, json=SENT),
    )
    result = client(script).mail.send(to="u@x.example", subject="Hi", text="x")

    assert result.message_id == "<a.1@x.example>"
    first, second, third = script.requests
    keys = {r.headers["Idempotency-Key"] for r in script.requests}
    assert len(keys) == 1
    assert first.content == second.content == third.content
    assert json.loads(first.content) == {"to": "u@x.example", "subject": "Hi", "text": "x"}
    assert first.url == "http://mail.test/api/v1/mail/send"
    assert first.headers["Authorization"] == f"Bearer {KEY}"
    assert first.headers["User-Agent"].startswith("mailpass-python/")


def test_each_call_gets_a_key_of_its_own_unless_given_one():
    script = Script(*(httpx.Response(200, json=SENT) for _ in range(3)))
    mail = client(script).mail
    mail.send(to="u@x.example", subject="Hi", text="x")
    mail.send(to="u@x.example", subject="Hi", text="x")
    mail.send(to="u@x.example", subject="Hi", text="x", idempotency_key="order-1")
    keys = [r.headers["Idempotency-Key"] for r in script.requests]
    assert keys[0] != keys[1]
    assert keys[2] == "order-1"


def test_retries_are_bounded():
    script = Script(*(error("INTERNAL_ERROR", 500) for _ in range(3)))
    with pytest.raises(InternalServerError):
        client(script, max_retries=2).mail.send(to="u@x.example", subject="Hi", text="x")
    assert len(script.requests) == 3


def test_a_replayed_answer_is_final():
    script = Script(error("INTERNAL_ERROR", 500, {"Idempotent-Replayed": "true"}))
    with pytest.raises(InternalServerError) as raised:
        client(script).mail.send(to="u@x.example", subject="Hi", text="x")
    assert raised.value.replayed is True
    assert len(script.requests) == 1


def test_a_short_retry_after_is_waited_for_and_a_long_one_is_not():
    short = Script(
        error("SEND_LIMIT_EXCEEDED", 429, {"Retry-After": "0"}), httpx.Response(200, json=SENT)
    )
    client(short).mail.send(to="u@x.example", subject="Hi", text="x")
    assert len(short.requests) == 2

    long = Script(
        httpx.Response(
            429,
            json={
                "success": False,
                "error": {
                    "code": "SEND_LIMIT_EXCEEDED",
                    "message": "daily limit",
                    "details": [{"retry_after": 80000}],
                },
            },
            headers={"Retry-After": "80000"},
        )
    )
    with pytest.raises(SendLimitExceededError) as raised:
        client(long).mail.send(to="u@x.example", subject="Hi", text="x")
    assert raised.value.retry_after == 80000
    assert len(long.requests) == 1


@pytest.mark.parametrize(
    ("answer", "retried"),
    [
        (error("VALIDATION_ERROR", 400), False),
        (error("REQUEST_TIMEOUT", 408), True),
        (error("HEADERS_TOO_LARGE", 431), False),
        (error("IDEMPOTENCY_CONFLICT", 409), False),
        (error("IDEMPOTENCY_IN_PROGRESS", 409, {"Retry-After": "0"}), True),
        (error("SEND_FAILED", 500), False),
        (error("INTERNAL_ERROR", 500), True),
        (httpx.Response(503, text="unavailable"), True),
        (httpx.Response(504, text="timeout"), True),
    ],
)
def test_what_is_retried(answer, retried):
    script = Script(answer, httpx.Response(200, json=SENT))
    mail = client(script).mail
    if retried:
        mail.send(to="u@x.example", subject="Hi", text="x")
        assert len(script.requests) == 2
    else:
        with pytest.raises(APIError):
            mail.send(to="u@x.example", subject="Hi", text="x")
        assert len(script.requests) == 1


def test_answers_outside_the_envelope_and_unknown_codes_are_api_errors():
    proxy_page = Script(httpx.Response(404, text="<html>not here</html>"))
    with pytest.raises(APIError) as raised:
        client(proxy_page).mail.status("<a@b.example>")
    assert type(raised.value) is APIError
    assert raised.value.code is None
    assert raised.value.status_code == 404
    assert "not here" in str(raised.value)

    newer_server = Script(error("SOMETHING_NEW", 418))
    with pytest.raises(APIError) as raised:
        client(newer_server).mail.status("<a@b.example>")
    assert raised.value.code == "SOMETHING_NEW"
    assert str(raised.value) == "SOMETHING_NEW: SOMETHING_NEW happened"


def test_status_encodes_the_id_and_needs_no_key():
    answer = {
        "success": True,
        "data": {
            "message": {
                "message_id": "<a/b@x.example>",
                "status": "queued",
                "from_email": "s@x.example",
                "to_email": "u@x.example",
                "subject": "Hi",
                "created_at": "2026-01-30T12:00:00",
                "future_field": 1,
            },
            "events": [{"event_type": "open", "created_at": "2026-01-30T12:05:00"}],
        },
    }
    script = Script(httpx.Response(200, json=answer))
    status = client(script).mail.status("<a/b@x.example>")
    [request] = script.requests
    assert request.url.raw_path == b"/api/v1/mail/status/%3Ca%2Fb%40x.example%3E"
    assert "Idempotency-Key" not in request.headers
    assert status.message.created_at.isoformat() == "2026-01-30T12:00:00+00:00"
    assert status.events[0].event_type == "open"


async def test_the_async_twin_retries_alike():
    script = Script(httpx.ReadError("dropped"), httpx.Response(200, json=SENT))
    async with AsyncClient(
        KEY,
        base_url="http://mail.test/",
        transport=httpx.MockTransport(script),
        retry_backoff=0.001,
    ) as async_client:
        result = await async_client.mail.send(to="u@x.example", subject="Hi", text="x")
    assert result.to == "u@x.example"
    assert len({r.headers["Idempotency-Key"] for r in script.requests}) == 1
    assert len(script.requests) == 2


def test_configuration_errors(monkeypatch):
    monkeypatch.delenv("MAILPASS_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="MAILPASS_API_KEY"):
        Client()
    with pytest.raises(ConfigurationError, match="http"):
        Client(KEY, base_url="ftp://mail.example.com")


def test_a_base_url_with_a_path_prefix_is_kept():
    script = Script(httpx.Response(200, json=SENT))
    Client(
        KEY, base_url="https://example.com/mailpass/", transport=httpx.MockTransport(script)
    ).mail.send(to="u@x.example", subject="Hi", text="x")
    assert script.requests[0].url == "https://example.com/mailpass/api/v1/mail/send"


def test_service_unavailable_is_retried_and_then_raised_as_its_own_error():
    outage = Script(
        error("SERVICE_UNAVAILABLE", 503, {"Retry-After": "0"}), httpx.Response(200, json=SENT)
    )
    assert client(outage).mail.send(to="u@x.example", subject="Hi", text="x").message_id
    assert len(outage.requests) == 2
    lasting = Script(*(error("SERVICE_UNAVAILABLE", 503, {"Retry-After": "0"}) for _ in range(2)))
    with pytest.raises(ServiceUnavailableError) as raised:
        client(lasting, max_retries=1).mail.send(to="u@x.example", subject="Hi", text="x")
    assert raised.value.retry_after == 0
    assert raised.value.status_code == 503
