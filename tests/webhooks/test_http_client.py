"""The dispatcher's HTTP client against real servers on 127.0.0.1: TLS checked against the
endpoint's name, answers whatever their framing (length, chunks, or the connection's end),
kept connections reused and replaced when the endpoint closed them, and a deadline for an
endpoint that never answers."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import trustme

from mailpass.webhooks.http import HttpClient, HttpError

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return head, await reader.readexactly(length)


class Server:
    def __init__(self) -> None:
        self.connections = 0
        self.requests: list[tuple[bytes, bytes]] = []
        self.url = ""


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[Server]]]:
    servers: list[asyncio.Server] = []

    async def start(
        answers: list[bytes], *, tls: ssl.SSLContext | None = None, close_after: bool = False
    ) -> Server:
        state = Server()
        pending = list(answers)

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            state.connections += 1
            try:
                while True:
                    state.requests.append(await read_request(reader))
                    answer = pending.pop(0) if pending else None
                    if answer is None:
                        await asyncio.sleep(3600)  # never answers
                    writer.write(answer)
                    await writer.drain()
                    if close_after or b"connection: close" in answer.lower():
                        break
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=tls)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        state.url = f"{'https' if tls else 'http'}://localhost:{port}/hooks/x?a=1"
        return state

    yield start
    for server in servers:
        server.close()


def client(timeout: float = 5.0, ca: trustme.CA | None = None) -> HttpClient:
    context = ssl.create_default_context()
    if ca is not None:
        ca.configure_trust(context)
    return HttpClient(context, timeout, "MailPass-Test")


OK = b"HTTP/1.1 204 No Content\r\n\r\n"


async def test_a_kept_connection_is_reused_and_its_request_well_formed(serve):
    server = await serve([OK, OK, OK])
    http = client()
    try:
        for n in range(3):
            url = server.url + "&b=x y\r\nx-injected: 1"
            answer = await http.post(url, b'{"n":%d}' % n, {"webhook-id": "msg_1"})
            assert answer.status == 204
    finally:
        await http.close()
    assert server.connections == 1
    head, body = server.requests[2]
    lines = head.decode().split("\r\n")
    # urlsplit drops CR/LF from URLs; what a request line cannot carry is escaped
    assert lines[0] == "POST /hooks/x?a=1&b=x%20yx-injected:%201 HTTP/1.1"
    assert "x-injected: 1" not in lines
    assert f"host: {server.url.split('/')[2]}" in lines
    assert "webhook-id: msg_1" in lines
    assert "user-agent: MailPass-Test" in lines
    assert body == b'{"n":2}'


async def test_an_endpoint_that_closed_its_kept_connection_gets_a_new_one(serve):
    server = await serve([OK, OK], close_after=True)  # closes once it has answered
    http = client()
    try:
        assert (await http.post(server.url, b"{}", {})).status == 204
        await asyncio.sleep(0.1)  # the close arrives
        assert (await http.post(server.url, b"{}", {})).status == 204
    finally:
        await http.close()
    assert server.connections == 2


@pytest.mark.parametrize(
    ("answer", "status", "body"),
    [
        (b"HTTP/1.1 500 Oops\r\nContent-Length: 4\r\n\r\nboom", 500, b"boom"),
        (
            b"HTTP/1.1 502 Bad\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"2\r\nbo\r\n2\r\nom\r\n0\r\n\r\n",
            502,
            b"boom",
        ),
        (b"HTTP/1.0 503 Busy\r\n\r\nboom", 503, b"boom"),  # ended by the connection's close
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000, 200, b"x" * 1024),
    ],
)
async def test_answers_are_read_whatever_their_framing(serve, answer, status, body):
    server = await serve([answer], close_after=answer.startswith(b"HTTP/1.0"))
    http = client()
    try:
        got = await http.post(server.url, b"{}", {})
    finally:
        await http.close()
    assert (got.status, got.body) == (status, body)


async def test_tls_is_checked_against_the_endpoints_name(serve):
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    server = await serve([OK], tls=context)
    trusted = client(ca=ca)
    try:
        assert (await trusted.post(server.url, b"{}", {})).status == 204
    finally:
        await trusted.close()
    untrusted = client()  # the system's CAs only
    try:
        with pytest.raises(HttpError, match="certificate verify failed"):
            await untrusted.post(server.url, b"{}", {})
    finally:
        await untrusted.close()
    other_name = client(ca=ca)
    try:
        with pytest.raises(HttpError, match="certificate verify failed"):
            # the right server, reached under a name its certificate does not carry
            await other_name.post(server.url.replace("localhost", "127.0.0.1"), b"{}", {})
    finally:
        await other_name.close()


async def test_an_endpoint_that_never_answers_meets_the_deadline(serve):
    server = await serve([])
    http = client(timeout=0.5)
    try:
        with pytest.raises(TimeoutError):
            await http.post(server.url, b"{}", {})
        with pytest.raises(HttpError, match="could not connect"):
            await http.post("http://127.0.0.1:9/", b"{}", {})
    finally:
        await http.close()
