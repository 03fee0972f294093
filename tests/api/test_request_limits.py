"""What a request may hold a server process for: a body that stops arriving is cut off with 408,
header fields over the cap are refused with 431; both in the envelope, over a real socket."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    settings.request_body_timeout = 0.5
    settings.max_header_bytes = 8 * 1024
    return settings


def exchange(base_url: str, request: bytes, *, wait: float = 10.0) -> tuple[int, dict, float]:
    """Send ``request`` raw, read the answer; its status, its JSON body and how long it took."""
    host, port = base_url.removeprefix("http://").split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=wait) as connection:
        connection.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = connection.recv(65536)
            if not chunk:
                break
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body), time.monotonic() - started


async def test_a_body_that_stops_arriving_is_answered_408(
    live_server, make_account, smtp_sink
) -> None:
    account = await make_account(sink=smtp_sink)
    request = (
        b"POST /api/v1/mail/send HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {account.key}\r\n".encode()
        + b"Transfer-Encoding: chunked\r\n\r\n"
        + b'5\r\n{"to"\r\n'  # and then nothing: the last chunk never comes
    )
    status, body, took = await asyncio.to_thread(exchange, live_server.base_url, request)
    assert status == 408
    assert body["error"]["code"] == "REQUEST_TIMEOUT"
    assert 0.4 < took < 5
    assert smtp_sink.messages == []


async def test_header_fields_over_the_cap_are_answered_431(live_server) -> None:
    request = (
        b"GET /api/v1/mail/status/x HTTP/1.1\r\nHost: x\r\n"
        + b"X-Padding: "
        + b"a" * (9 * 1024)
        + b"\r\n\r\n"
    )
    status, body, _took = await asyncio.to_thread(exchange, live_server.base_url, request)
    assert status == 431
    assert body["error"]["code"] == "HEADERS_TOO_LARGE"
