"""/openapi.json tells the truth about the wire format, and the docs pages work offline."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from mailpass import errors
from mailpass.clock import utcnow
from mailpass.messages.request import BatchFields, MessageFields

SEND = "/api/v1/mail/send"
BATCH = "/api/v1/mail/send-batch"
STATUS = "/api/v1/mail/status/{message_id}"


@pytest.fixture
async def document(app_client):
    response = await app_client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    return response.json()


def error_codes_by_status(operation):
    """{status: [codes]} of an operation's documented error answers."""
    found = {}
    for status, response in operation["responses"].items():
        if status == "200":
            continue
        schema = response["content"]["application/json"]["schema"]
        found[int(status)] = schema["allOf"][1]["properties"]["error"]["properties"]["code"]["enum"]
    return found


async def test_the_mail_endpoints_are_described(document):
    assert document["openapi"].startswith("3.1")
    assert {SEND, BATCH, STATUS} <= set(document["paths"])
    send = document["paths"][SEND]["post"]
    assert send["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/SendRequest"
    }
    assert send["security"] == [{"bearerAuth": []}]
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    [idempotency_key] = send["parameters"]
    assert (idempotency_key["name"], idempotency_key["in"]) == ("Idempotency-Key", "header")
    assert idempotency_key["schema"]["maxLength"] == 256


async def test_every_error_code_is_documented_with_its_status(document):
    codes = {
        error.code: error.http_status
        for error in vars(errors).values()
        if isinstance(error, type)
        and issubclass(error, errors.ApiError)
        and error is not errors.ApiError
    }
    assert set(document["components"]["schemas"]["Error"]["properties"]["code"]["enum"]) == set(
        codes
    )
    for code, status in codes.items():
        assert f"| `{code}` | {status} |" in document["info"]["description"]

    paths = document["paths"]
    assert error_codes_by_status(paths[SEND]["post"]) == {
        400: ["VALIDATION_ERROR"],
        401: ["UNAUTHORIZED"],
        403: ["FORBIDDEN"],
        408: ["REQUEST_TIMEOUT"],
        409: ["IDEMPOTENCY_CONFLICT", "IDEMPOTENCY_IN_PROGRESS"],
        413: ["PAYLOAD_TOO_LARGE"],
        422: ["NO_SMTP_PROVIDER", "RECIPIENT_SUPPRESSED"],
        431: ["HEADERS_TOO_LARGE"],
        429: ["RATE_LIMITED", "SEND_LIMIT_EXCEEDED"],
        500: ["INTERNAL_ERROR", "SEND_FAILED"],
        503: ["SERVICE_UNAVAILABLE"],
    }
    # Queued mail waits for a provider's limit instead.
    assert error_codes_by_status(paths[BATCH]["post"])[429] == ["RATE_LIMITED"]
    assert error_codes_by_status(paths[STATUS]["get"]) == {
        401: ["UNAUTHORIZED"],
        403: ["FORBIDDEN"],
        404: ["NOT_FOUND"],
        429: ["RATE_LIMITED"],
        431: ["HEADERS_TOO_LARGE"],
        500: ["INTERNAL_ERROR"],
        503: ["SERVICE_UNAVAILABLE"],
    }
    # FastAPI's own 422 is never answered: the app turns it into a 400 VALIDATION_ERROR.
    assert "HTTPValidationError" not in json.dumps(document)


async def test_request_schemas_name_every_field_the_server_reads(document):
    schemas = document["components"]["schemas"]
    assert set(schemas["SendRequest"]["properties"]) == set(MessageFields.model_fields)
    assert set(schemas["BatchMessage"]["properties"]) == set(MessageFields.model_fields)
    assert set(schemas["BatchRequest"]["properties"]) == set(BatchFields.model_fields)
    assert schemas["SendRequest"]["required"] == ["to", "subject"]


async def test_the_seed_examples_are_the_examples(document):
    examples = document["components"]["examples"]
    assert examples["SeedCurlRequest"]["value"] == {
        "to": "user@example.com",
        "subject": "Hello",
        "html": "<p>Hello World</p>",
    }
    assert examples["SeedSendRequest"]["value"]["metadata"] == {"order_id": "12345"}
    assert examples["SeedSendAnswer"]["value"]["data"]["message_id"] == (
        "<abc123.1706600000@mailpass.im>"
    )
    assert examples["SeedBatchRequest"]["value"]["messages"][1]["subject"] == "Hello B"
    # Nulls survive (FastAPI's own encoding would drop them).
    assert examples["SeedStatusAnswer"]["value"]["data"]["message"]["error_message"] is None
    assert examples["SEND_FAILED"]["value"]["error"]["details"][0]["smtp_code"] == 550


async def test_documented_answers_match_real_ones(app_client, document, make_account, smtp_sink):
    """The success answers of the real server have exactly the documented fields."""
    schemas = document["components"]["schemas"]
    account = await make_account(sink=smtp_sink)
    sent = (
        await app_client.post(
            SEND,
            json={"to": "user@example.com", "subject": "Hi", "text": "x"},
            headers=account.headers,
        )
    ).json()["data"]
    status = (
        await app_client.get(f"/api/v1/mail/status/{sent['message_id']}", headers=account.headers)
    ).json()["data"]
    assert set(sent) == set(schemas["SendResult"]["required"])
    # Only when there are some; and a scheduled send's.
    assert set(schemas["SendResult"]["properties"]) - set(sent) == {
        "ignored_fields",
        "queue_id",
        "scheduled_at",
        "suppressed",
    }
    with_typo = (
        await app_client.post(
            SEND,
            json={"to": "user@example.com", "subject": "Hi", "text": "x", "atachments": []},
            headers=account.headers,
        )
    ).json()["data"]
    assert set(with_typo) == set(sent) | {"ignored_fields"}
    scheduled = (
        await app_client.post(
            SEND,
            json={
                "to": "user@example.com",
                "subject": "Hi",
                "text": "x",
                "scheduled_at": (utcnow() + timedelta(hours=1)).isoformat(),
                "atachments": [],
            },
            headers=account.headers,
        )
    ).json()["data"]
    assert set(scheduled) == set(schemas["SendResult"]["properties"]) - {"suppressed"}
    assert set(status["message"]) >= set(schemas["Message"]["required"])
    assert set(schemas["Message"]["properties"]) >= set(status["message"])


async def test_docs_pages_load_everything_from_this_server(app_client):
    for page in ("/docs", "/redoc"):
        response = await app_client.get(page)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        html = response.text
        assert "/openapi.json" in html
        # Every script, style sheet and font comes from here: nothing from a CDN.
        assert re.findall(r"""(?:src|href)=["']?https?://""", html) == []
        assets = re.findall(r"""/docs/assets/[\w.-]+""", html)
        assert assets
        for asset in set(assets):
            fetched = await app_client.get(asset)
            assert fetched.status_code == 200, asset
            assert len(fetched.content) > 1000


async def test_a_wrong_method_says_which_are_allowed(app_client):
    response = await app_client.get(SEND)
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
    assert response.headers["Allow"] == "POST"
