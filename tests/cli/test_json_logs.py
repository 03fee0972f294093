"""``MAILPASS_LOG_FORMAT=json``: a real ``mailpass serve`` writes one JSON object a line,
uvicorn's own lines included; a request's lines carry its ``X-Request-Id`` (answered back in the
same header), a message's its ``message_id``, and no line holds the API key."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from process_fixtures import free_port, running, wait_healthy

pytestmark = pytest.mark.slow


async def test_json_lines_name_the_request_and_the_message(cli_env, make_account):
    account = await make_account(test_key=True)  # its mail goes to the capture inbox, logged
    port = free_port()
    env = {**cli_env, "MAILPASS_LOG_FORMAT": "json"}
    async with running("serve", "--port", str(port), "--access-log", env=env) as server:
        base_url = f"http://127.0.0.1:{port}"
        await wait_healthy(base_url, server)
        async with httpx.AsyncClient(base_url=base_url, headers=account.headers) as client:
            sent = await client.post(
                "/api/v1/mail/send",
                json={
                    "to": "user@example.com",
                    "from_email": "shop@example.com",
                    "subject": "Hi",
                    "text": "Hi",
                },
                headers={"X-Request-Id": "order-42-receipt"},
            )
            minted = await client.get("/healthz")
            forged = await client.get("/healthz", headers={"X-Request-Id": "a b"})
        await asyncio.sleep(0.3)
    stderr = (await server.stderr.read()).decode()

    assert sent.status_code == 200, sent.text
    assert sent.headers["x-request-id"] == "order-42-receipt"
    assert len(minted.headers["x-request-id"]) == 24  # made here: 12 random bytes
    assert forged.headers["x-request-id"] != "a b"  # not a header or a log line's to shape
    lines = [json.loads(line) for line in stderr.splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines), lines
    message_id = sent.json()["data"]["message_id"]
    [captured] = [line for line in lines if line["logger"] == "mailpass.capture"]
    assert captured["request_id"] == "order-42-receipt"
    assert captured["message_id"] == message_id
    access = [line for line in lines if line["logger"] == "uvicorn.access"]
    assert any(
        "POST /api/v1/mail/send" in line["message"] and line["request_id"] == "order-42-receipt"
        for line in access
    ), access
    assert any(line["logger"] == "uvicorn.error" for line in lines), lines  # "Application startup…"
    assert account.key not in stderr
