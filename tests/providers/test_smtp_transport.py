"""SmtpTransport and probe() against a real SMTP server (aiosmtpd, see smtp_fixtures)."""

from __future__ import annotations

import asyncio
import base64
import email.policy
import socket
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from typing import Any

import pytest

from mailpass.providers.smtp import ProbeError, SmtpEndpoint, SmtpTransport, probe
from mailpass.providers.transport import (
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from smtp_fixtures import SmtpSink

MakeSink = Callable[..., Awaitable[SmtpSink]]

SENDER = "app@example.com"
USERS = {"mailer": "s3cret-pässword"}


def mime(subject: str = "Hello") -> bytes:
    message = EmailMessage()
    message["From"] = SENDER
    message["To"] = "ann@example.com"
    message["Subject"] = subject
    # The leading dot checks dot-stuffing both ways; the rest, that bytes arrive untouched.
    message.set_content("Hi Ann,\n.a line starting with a dot\n\nBye\n")
    return message.as_bytes(policy=email.policy.SMTP)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def eventually(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    """Wait for something the server only sees a moment after the client did it."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"still not true after {timeout} s")
        await asyncio.sleep(0.01)


async def send_expecting_error(transport: SmtpTransport, *recipients: str) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        await transport.send(SENDER, list(recipients or ["ann@example.com"]), mime())
    return caught.value


@pytest.fixture
async def transports() -> Any:
    """Builds transports and closes them after the test, pass or fail."""
    made: list[SmtpTransport] = []

    def make(sink_or_endpoint: Any, **options: Any) -> SmtpTransport:
        endpoint = (
            sink_or_endpoint.endpoint()
            if isinstance(sink_or_endpoint, SmtpSink)
            else sink_or_endpoint
        )
        transport = SmtpTransport(endpoint, **options)
        made.append(transport)
        return transport

    yield make
    for transport in made:
        await transport.close()


# -- delivery ----------------------------------------------------------------------------------


PIPELINING = pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "one-by-one"])


@pytest.mark.parametrize("tls_mode", ["none", "starttls", "tls"])
@pytest.mark.parametrize("with_auth", [False, True], ids=["anonymous", "auth"])
@PIPELINING
async def test_delivers_exact_bytes_to_the_envelope_recipients(
    make_smtp_sink: MakeSink, transports: Any, tls_mode: str, with_auth: bool, pipelining: bool
) -> None:
    sink = await make_smtp_sink(
        tls_mode=tls_mode, auth=USERS, require_auth=with_auth, pipelining=pipelining
    )
    credentials = {"username": "mailer", "password": USERS["mailer"]} if with_auth else {}
    transport = transports(sink.endpoint(**credentials))
    data = mime()
    # The envelope decides who gets it, not the headers: "bcc@" appears in no header.
    recipients = ["ann@example.com", "bcc@example.org"]

    result = await transport.send(SENDER, recipients, data)

    assert result.reply == "250 2.0.0 OK"
    assert result.refused == {}
    [received] = await sink.wait_for(1)
    assert received.mail_options == [f"SIZE={len(data)}"]  # RFC 1870: the octets sent
    assert received.data == data
    assert received.mail_from == SENDER
    assert received.rcpt_tos == recipients
    assert received.message["Subject"] == "Hello"
    assert received.tls is (tls_mode != "none")
    assert received.auth_username == ("mailer" if with_auth else None)


async def test_certificate_is_checked_against_the_host_name(
    make_smtp_sink: MakeSink, transports: Any
) -> None:
    sink = await make_smtp_sink(tls_mode="tls")
    transport = transports(sink.endpoint(host="localhost"))

    await transport.send(SENDER, ["ann@example.com"], mime())

    [received] = await sink.wait_for(1)
    assert received.tls


@PIPELINING
async def test_partial_refusal_delivers_to_the_rest_and_lists_the_refused(
    make_smtp_sink: MakeSink, transports: Any, pipelining: bool
) -> None:
    refusal = "550 5.1.1 <gone@example.com>: Recipient address rejected"
    sink = await make_smtp_sink(rcpt_replies={"gone@example.com": refusal}, pipelining=pipelining)
    transport = transports(sink)

    result = await transport.send(SENDER, ["ann@example.com", "gone@example.com"], mime())

    assert result.refused == {"gone@example.com": refusal}
    [received] = await sink.wait_for(1)
    assert received.rcpt_tos == ["ann@example.com"]


Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
async def scripted_server() -> Any:
    """``await scripted_server(script)``: an endpoint whose server greets, answers EHLO with
    PIPELINING, runs ``script`` for the transaction, then answers QUIT; for what aiosmtpd
    cannot be made to do (hold replies back, split them anywhere)."""
    servers: list[asyncio.Server] = []
    failures: list[BaseException] = []

    async def start(script: Script) -> SmtpEndpoint:
        async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                writer.write(b"220 scripted.test ESMTP\r\n")
                assert (await reader.readline()).startswith(b"EHLO ")
                writer.write(b"250-scripted.test\r\n250-PIPELINING\r\n250 SIZE 1000000\r\n")
                await script(reader, writer)
                assert await reader.readline() == b"QUIT\r\n"
                writer.write(b"221 2.0.0 Bye\r\n")
                await writer.drain()
            except BaseException as exc:  # reported by the test, not lost in the server
                failures.append(exc)
            finally:
                writer.close()

        server = await asyncio.start_server(session, "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return SmtpEndpoint(
            host="127.0.0.1", port=port, security="none", local_hostname="client.test", timeout=2
        )

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()
    if failures:
        raise failures[0]


async def test_pipelining_sends_the_envelope_without_waiting_for_replies(
    scripted_server: Any, transports: Any
) -> None:
    arrived: list[bytes] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Nothing is answered before MAIL, both RCPTs and DATA are in: a client that waited
        # for the reply to MAIL would time out here.
        arrived.extend([await reader.readline() for _ in range(4)])
        writer.write(b"250 2.1.0 Sender ok\r\n250 2.1.5 Ok\r\n550 5.1.1 No such user\r\n")
        await writer.drain()
        await asyncio.sleep(0.01)
        writer.write(b"354 Go ahead\r\n")
        arrived.append(await reader.readuntil(b"\r\n.\r\n"))
        # The final reply in pieces that end mid-line and mid-reply.
        for piece in (b"250-2.0.0 Queued\r", b"\n250 2.0.0 as ", b"A1B2\r\n"):
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.01)

    transport = transports(await scripted_server(script))
    data = mime()

    result = await transport.send(SENDER, ["ann@example.com", "gone@example.com"], data)

    assert arrived[:4] == [
        f"MAIL FROM:<{SENDER}> SIZE={len(data)}\r\n".encode(),
        b"RCPT TO:<ann@example.com>\r\n",
        b"RCPT TO:<gone@example.com>\r\n",
        b"DATA\r\n",
    ]
    assert arrived[4] == data.replace(b"\r\n.a line", b"\r\n..a line") + b".\r\n"
    assert result.reply == "250 2.0.0 Queued 2.0.0 as A1B2"
    assert result.refused == {"gone@example.com": "550 5.1.1 No such user"}


async def test_pipelining_ends_an_accepted_data_at_once_when_no_recipient_was(
    scripted_server: Any, transports: Any
) -> None:
    after_data: list[bytes] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(3):
            await reader.readline()
        # A server that says 354 although it refused the only recipient (RFC 2920 3.1).
        writer.write(b"250 2.1.0 Ok\r\n450 4.2.0 Mailbox busy\r\n354 Go ahead\r\n")
        after_data.append(await reader.readline())
        writer.write(b"554 5.5.1 No valid recipients\r\n")
        after_data.append(await reader.readline())
        writer.write(b"250 2.0.0 Reset\r\n")

    transport = transports(await scripted_server(script))

    error = await send_expecting_error(transport)

    assert after_data == [b".\r\n", b"RSET\r\n"]  # no message, then a clean envelope
    assert isinstance(error, TransientDeliveryError)
    assert error.smtp_code == 450


# -- failures and their classification -----------------------------------------------------------


@pytest.mark.parametrize("tls_mode", ["none", "starttls", "tls"])
async def test_wrong_password_is_permanent_with_the_535_reply(
    make_smtp_sink: MakeSink, transports: Any, tls_mode: str
) -> None:
    sink = await make_smtp_sink(tls_mode=tls_mode, auth=USERS, require_auth=True)
    transport = transports(sink.endpoint(username="mailer", password="wrong"))

    error = await send_expecting_error(transport)

    assert isinstance(error, PermanentDeliveryError)
    assert error.smtp_code == 535
    assert error.reply == "535 5.7.8 Authentication credentials invalid"
    assert sink.messages == []


@pytest.mark.parametrize("tls_mode", ["starttls", "tls"])
async def test_untrusted_certificate_is_permanent(
    make_smtp_sink: MakeSink, transports: Any, tls_mode: str
) -> None:
    sink = await make_smtp_sink(tls_mode=tls_mode)
    transport = transports(sink.endpoint(ca_file=None))  # our test CA is not a system root

    error = await send_expecting_error(transport)

    assert isinstance(error, PermanentDeliveryError)
    assert error.smtp_code is None
    assert error.reply.startswith("TLS certificate verify failed for 127.0.0.1: ")
    assert "local issuer" in error.reply
    assert sink.messages == []


@pytest.mark.parametrize(
    ("options", "endpoint_options", "kind", "reply", "code"),
    [
        pytest.param(
            {"data_replies": ["451 4.3.0 Try again later"]}, {},
            TransientDeliveryError, "451 4.3.0 Try again later", 451, id="451-at-data",
        ),
        pytest.param(
            {"data_replies": ["550 5.7.1 Message rejected as spam"]}, {},
            PermanentDeliveryError, "550 5.7.1 Message rejected as spam", 550, id="550-at-data",
        ),
        pytest.param(
            {"rcpt_replies": {"ann@example.com": "550 5.1.1 <ann@example.com>: No such user"}},
            {}, PermanentDeliveryError, "550 5.1.1 <ann@example.com>: No such user", 550,
            id="only-recipient-refused",
        ),
        pytest.param(
            {"auth": USERS, "require_auth": True}, {},
            PermanentDeliveryError, "530 5.7.0 Authentication required", 530,
            id="credentials-missing",
        ),
        pytest.param(
            {"tls_mode": "none"}, {"security": "starttls"},
            PermanentDeliveryError, "does not offer STARTTLS", None, id="no-starttls",
        ),
    ],
)  # fmt: skip
@PIPELINING
async def test_server_refusals_are_classified_with_the_servers_reply(
    make_smtp_sink: MakeSink,
    transports: Any,
    options: dict[str, Any],
    endpoint_options: dict[str, Any],
    kind: type[DeliveryError],
    reply: str,
    code: int | None,
    pipelining: bool,
) -> None:
    sink = await make_smtp_sink(**options, pipelining=pipelining)
    transport = transports(sink.endpoint(**endpoint_options))

    error = await send_expecting_error(transport)

    assert type(error) is kind
    assert reply in error.reply
    assert error.smtp_code == code
    assert sink.messages == []


@pytest.mark.parametrize(
    ("replies", "kind", "code"),
    [
        (["450 4.2.0 Mailbox busy", "451 4.3.0 Greylisted"], TransientDeliveryError, 450),
        (["450 4.2.0 Mailbox busy", "550 5.1.1 No such user"], PermanentDeliveryError, 550),
    ],
    ids=["all-temporary", "one-permanent"],
)
@PIPELINING
async def test_all_recipients_refused_is_transient_only_if_every_refusal_was(
    make_smtp_sink: MakeSink,
    transports: Any,
    replies: list[str],
    kind: type[DeliveryError],
    code: int,
    pipelining: bool,
) -> None:
    recipients = ["ann@example.com", "bob@example.com"]
    sink = await make_smtp_sink(
        rcpt_replies=dict(zip(recipients, replies, strict=True)), pipelining=pipelining
    )
    transport = transports(sink)

    error = await send_expecting_error(transport, *recipients)

    assert type(error) is kind
    assert error.smtp_code == code
    for recipient, reply in zip(recipients, replies, strict=True):
        assert f"{recipient}: {reply}" in error.reply
    # The refused envelope was reset: the same connection carries the next message cleanly.
    await transport.send(SENDER, ["cy@example.com"], mime())
    [received] = await sink.wait_for(1)
    assert received.rcpt_tos == ["cy@example.com"]
    assert sink.connections_opened == 1


async def test_connection_refused_is_transient(transports: Any) -> None:
    port = closed_port()
    transport = transports(SmtpSink(port=port).endpoint())

    error = await send_expecting_error(transport)

    assert isinstance(error, TransientDeliveryError)
    assert error.reply == f"connection refused by 127.0.0.1:{port}"


async def test_timeout_waiting_for_the_data_reply_is_transient_and_not_resent(
    make_smtp_sink: MakeSink, transports: Any
) -> None:
    sink = await make_smtp_sink(delay_data=0.5)
    transport = transports(sink.endpoint(timeout=0.2))

    error = await send_expecting_error(transport)

    assert isinstance(error, TransientDeliveryError)
    assert error.reply == f"127.0.0.1:{sink.port} did not answer DATA within 0.2 s"
    # The server did take it, late: exactly why nothing may be resent after DATA.
    await sink.wait_for(1)
    await asyncio.sleep(0.2)
    assert len(sink.messages) == 1
    assert sink.connections_opened == 1


@pytest.mark.parametrize("reused", [False, True], ids=["fresh-connection", "pooled-connection"])
async def test_connection_dropped_after_data_is_transient_and_not_resent(
    make_smtp_sink: MakeSink, transports: Any, reused: bool
) -> None:
    sink = await make_smtp_sink()
    transport = transports(sink)
    if reused:
        await transport.send(SENDER, ["ann@example.com"], mime("first"))
    sink.drop_on_data = 1

    error = await send_expecting_error(transport)

    assert isinstance(error, TransientDeliveryError)
    assert error.smtp_code is None
    assert error.reply == f"127.0.0.1:{sink.port} closed the connection during DATA"
    await asyncio.sleep(0.1)  # room for a (wrong) resend to arrive
    assert [m.message["Subject"] for m in sink.messages] == (["first"] if reused else [])
    assert sink.connections_opened == 1
    # The transport recovers on its own for the next message.
    await transport.send(SENDER, ["ann@example.com"], mime("next"))
    assert sink.messages[-1].message["Subject"] == "next"


async def test_temporary_failure_then_success_on_the_same_connection(
    make_smtp_sink: MakeSink, transports: Any
) -> None:
    sink = await make_smtp_sink(data_replies=["451 4.3.0 Try again later", "250 2.0.0 Queued"])
    transport = transports(sink)

    with pytest.raises(TransientDeliveryError, match=r"^451 4\.3\.0 Try again later$"):
        await transport.send(SENDER, ["ann@example.com"], mime())
    result = await transport.send(SENDER, ["ann@example.com"], mime())

    assert result.reply == "250 2.0.0 Queued"
    [received] = await sink.wait_for(1)
    assert received.rcpt_tos == ["ann@example.com"]  # the failed envelope did not leak in
    assert sink.connections_opened == 1


# -- the connection pool ----------------------------------------------------------------------


async def test_sequential_sends_reuse_one_connection(
    make_smtp_sink: MakeSink, transports: Any
) -> None:
    sink = await make_smtp_sink()
    transport = transports(sink)

    for number in range(10):
        await transport.send(SENDER, ["ann@example.com"], mime(f"message {number}"))

    assert len(await sink.wait_for(10)) == 10
    assert sink.connections_opened == 1


@pytest.mark.parametrize("client_noticed", [False, True], ids=["unnoticed", "noticed"])
async def test_idle_connection_closed_by_the_server_is_replaced_transparently(
    make_smtp_sink: MakeSink, transports: Any, client_noticed: bool
) -> None:
    sink = await make_smtp_sink()
    transport = transports(sink)
    await transport.send(SENDER, ["ann@example.com"], mime("first"))

    await sink.disconnect_all()
    if client_noticed:
        await asyncio.sleep(0.05)
    result = await transport.send(SENDER, ["ann@example.com"], mime("second"))

    assert result.reply == "250 2.0.0 OK"
    received = await sink.wait_for(2)
    assert [m.message["Subject"] for m in received] == ["first", "second"]
    assert sink.connections_opened == 2


@pytest.mark.parametrize("reused", [False, True], ids=["fresh-connection", "pooled-connection"])
async def test_connection_dropped_at_mail_from_is_retried_only_if_it_was_pooled(
    make_smtp_sink: MakeSink, transports: Any, reused: bool
) -> None:
    sink = await make_smtp_sink()
    transport = transports(sink)
    if reused:
        await transport.send(SENDER, ["ann@example.com"], mime("first"))
    sink.drop_on_mail = 1

    if reused:
        await transport.send(SENDER, ["ann@example.com"], mime("second"))
        assert [m.message["Subject"] for m in await sink.wait_for(2)] == ["first", "second"]
        assert sink.connections_opened == 2
    else:
        # A brand-new connection dying is news about the server, not about our pool.
        error = await send_expecting_error(transport)
        assert isinstance(error, TransientDeliveryError)
        assert error.reply == f"127.0.0.1:{sink.port} closed the connection during MAIL"
        assert sink.connections_opened == 1


async def test_connections_idle_past_the_idle_timeout_are_closed(
    make_smtp_sink: MakeSink, transports: Any
) -> None:
    sink = await make_smtp_sink()
    transport = transports(sink, idle_timeout=0.05)
    await transport.send(SENDER, ["ann@example.com"], mime())

    # Closed by the transport's own timer, with no send to prompt it.
    await eventually(lambda: sink.current_connections == 0)
    await transport.send(SENDER, ["ann@example.com"], mime())

    assert sink.connections_opened == 2


async def test_concurrent_sends_share_at_most_max_connections(
    make_smtp_sink: MakeSink, transports: Any
) -> None:
    sink = await make_smtp_sink(delay_data=0.02)  # keeps transactions overlapping
    transport = transports(sink, max_connections=3)
    subjects = {f"message {number}" for number in range(30)}

    results = await asyncio.gather(
        *(transport.send(SENDER, ["ann@example.com"], mime(subject)) for subject in subjects)
    )

    assert all(result.reply == "250 2.0.0 OK" for result in results)
    received = await sink.wait_for(30)
    assert {m.message["Subject"] for m in received} == subjects
    assert sink.max_concurrent_connections == 3
    assert sink.connections_opened == 3


async def test_close_ends_the_pooled_connections(make_smtp_sink: MakeSink) -> None:
    sink = await make_smtp_sink()
    transport = SmtpTransport(sink.endpoint(), max_connections=2)
    await asyncio.gather(*(transport.send(SENDER, ["ann@example.com"], mime()) for _ in range(2)))
    assert sink.current_connections >= 1

    await transport.close()

    await eventually(lambda: sink.current_connections == 0)


def test_threaded_sink_serves_synchronous_code(
    make_threaded_smtp_sink: Callable[..., SmtpSink],
) -> None:
    sink = make_threaded_smtp_sink(tls_mode="starttls", auth=USERS)
    endpoint = sink.endpoint(username="mailer", password=USERS["mailer"])

    async def send() -> None:
        transport = SmtpTransport(endpoint)
        try:
            await transport.send(SENDER, ["ann@example.com"], mime())
        finally:
            await transport.close()

    asyncio.run(send())

    [received] = sink.wait_for_sync(1)
    assert received.data == mime()
    assert received.tls
    assert received.auth_username == "mailer"


# -- probe ---------------------------------------------------------------------------------------


async def test_probe_plain_transcript(smtp_sink: SmtpSink) -> None:
    transcript = await probe(smtp_sink.endpoint())

    assert transcript == [
        "S: 220 sink.mailpass.test MailPass test sink",
        "C: EHLO client.mailpass.test",
        "S: 250-sink.mailpass.test",
        "S: 250-PIPELINING",
        "S: 250-SIZE 33554432",
        "S: 250-8BITMIME",
        "S: 250 HELP",
        "C: QUIT",
        "S: 221 Bye",
    ]


@pytest.mark.parametrize("tls_mode", ["starttls", "tls"])
async def test_probe_with_auth_shows_each_step_but_never_the_credentials(
    make_smtp_sink: MakeSink, tls_mode: str
) -> None:
    sink = await make_smtp_sink(tls_mode=tls_mode, auth=USERS)
    password = USERS["mailer"]

    transcript = await probe(sink.endpoint(username="mailer", password=password))

    expected_steps = ["C: EHLO client.mailpass.test"]
    if tls_mode == "starttls":
        expected_steps += ["C: STARTTLS", "S: 220 Ready to start TLS"]
        expected_steps += ["C: EHLO client.mailpass.test"]
    expected_steps += [
        "S: 250-AUTH LOGIN PLAIN",
        "C: AUTH PLAIN <credentials hidden>",
        "S: 235 2.7.0 Authentication successful",
        "C: QUIT",
        "S: 221 Bye",
    ]
    assert [line for line in transcript if line in expected_steps] == expected_steps
    assert ("S: 250-STARTTLS" in transcript) is (tls_mode == "starttls")
    text = "\n".join(transcript)
    plain_payload = base64.b64encode(f"\0mailer\0{password}".encode()).decode()
    for secret in (password, plain_payload, base64.b64encode(password.encode()).decode()):
        assert secret not in text


async def probe_error(endpoint: Any) -> ProbeError:
    with pytest.raises(ProbeError) as caught:
        await probe(endpoint)
    assert "\n" not in str(caught.value)
    return caught.value


async def test_probe_wrong_password(make_smtp_sink: MakeSink) -> None:
    sink = await make_smtp_sink(tls_mode="starttls", auth=USERS)

    error = await probe_error(sink.endpoint(username="mailer", password="wrong"))

    assert str(error) == "authentication failed: 535 5.7.8 Authentication credentials invalid"
    assert "C: AUTH PLAIN <credentials hidden>" in error.transcript
    assert error.transcript[-1] == "S: 535 5.7.8 Authentication credentials invalid"
    assert not any("wrong" in line for line in error.transcript)


async def test_probe_connection_refused() -> None:
    port = closed_port()

    error = await probe_error(SmtpSink(port=port).endpoint())

    assert str(error) == f"cannot connect to 127.0.0.1:{port}: connection refused"
    assert error.transcript == []


async def test_probe_starttls_not_offered(smtp_sink: SmtpSink) -> None:
    error = await probe_error(smtp_sink.endpoint(security="starttls"))

    assert str(error) == f"127.0.0.1:{smtp_sink.port} does not offer STARTTLS"
    assert error.transcript[:2] == [
        "S: 220 sink.mailpass.test MailPass test sink",
        "C: EHLO client.mailpass.test",
    ]


@pytest.mark.parametrize("tls_mode", ["starttls", "tls"])
async def test_probe_untrusted_certificate(make_smtp_sink: MakeSink, tls_mode: str) -> None:
    sink = await make_smtp_sink(tls_mode=tls_mode)

    error = await probe_error(sink.endpoint(ca_file=None))

    assert str(error).startswith("TLS certificate verify failed for 127.0.0.1: ")


@pytest.mark.parametrize(
    ("envelope_from", "recipients"),
    [(SENDER, ["ann@example.com", "jörg@example.com"]), ("jörg@example.com", ["ann@example.com"])],
    ids=["recipient", "sender"],
)
async def test_non_ascii_address_is_permanent_before_anything_is_sent(
    smtp_sink: SmtpSink, transports: Any, envelope_from: str, recipients: list[str]
) -> None:
    transport = transports(smtp_sink)

    with pytest.raises(PermanentDeliveryError) as caught:
        await transport.send(envelope_from, recipients, mime())

    assert "'jörg@example.com': non-ASCII addresses need SMTPUTF8" in caught.value.reply
    assert smtp_sink.connections_opened == 0


@pytest.mark.parametrize(
    "banner",
    [b"SSH-2.0-OpenSSH_9.2p1 internal-host-7\r\n", b"HTTP/1.1 400 Bad Request secret\r\n\r\n"],
)
async def test_probe_of_a_service_that_is_not_smtp_does_not_echo_it(banner: bytes) -> None:
    async def not_smtp(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(banner)
        await writer.drain()
        await asyncio.sleep(1)
        writer.close()

    server = await asyncio.start_server(not_smtp, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        error = await probe_error(
            SmtpEndpoint(host="127.0.0.1", port=port, security="none", timeout=2)
        )
    finally:
        server.close()
        await server.wait_closed()
    assert str(error) == f"127.0.0.1:{port} did not answer as an SMTP server"
    shown = str(error) + "".join(error.transcript)
    assert "SSH" not in shown
    assert "secret" not in shown
    assert "internal-host" not in shown


async def test_a_server_that_never_greets_is_given_up_after_the_connect_timeout() -> None:
    """It accepts the connection and says nothing: the send fails (transiently) after the
    connect timeout, not the much longer command timeout."""
    silent: list[asyncio.StreamWriter] = []

    async def never_greet(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        silent.append(writer)
        await asyncio.sleep(30)

    server = await asyncio.start_server(never_greet, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    endpoint = SmtpEndpoint(
        host="127.0.0.1", port=port, security="none", timeout=20, connect_timeout=0.3
    )
    transport = SmtpTransport(endpoint)
    started = asyncio.get_running_loop().time()
    try:
        with pytest.raises(TransientDeliveryError) as raised:
            await transport.send("a@x.example", ["b@y.example"], b"Subject: x\r\n\r\nx\r\n")
    finally:
        await transport.close()
        for writer in silent:
            writer.close()
        server.close()
        await server.wait_closed()
    took = asyncio.get_running_loop().time() - started
    assert raised.value.reply == f"timed out connecting to 127.0.0.1:{port} after 0.3 s"
    assert took < 5
