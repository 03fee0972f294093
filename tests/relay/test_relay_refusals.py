"""What the relay refuses, and with which reply: each where the client made the mistake (at
MAIL, RCPT or the end of DATA), each with an enhanced status code, and nothing recorded."""

from __future__ import annotations

import asyncio
import base64
import smtplib
import ssl
import time

import sqlalchemy as sa
from prometheus_client import REGISTRY

from mailpass.relay.server import start_relay
from mailpass.storage.tables import api_keys, messages
from relay.conftest import mail, wire_bytes


def refused_count() -> float:
    return REGISTRY.get_sample_value("mailpass_relay_messages_total", {"outcome": "refused"}) or 0


async def message_count(app_client) -> int:
    async with app_client.app.state.services.database.read() as connection:
        count = sa.select(sa.func.count()).select_from(messages)
        return int((await connection.execute(count)).scalar_one())


async def test_ehlo_offers_what_the_pipeline_carries(app_client, relay, smtp_ca_file):
    def converse() -> dict[str, str]:
        with smtplib.SMTP("localhost", relay.port, timeout=10) as client:
            client.starttls(context=ssl.create_default_context(cafile=str(smtp_ca_file)))
            client.ehlo()
            return dict(client.esmtp_features)

    features = await asyncio.to_thread(converse)
    settings = app_client.app.state.services.settings
    assert features["size"] == str(settings.max_body_bytes)
    for offered in ("pipelining", "8bitmime", "enhancedstatuscodes"):
        assert offered in features
    assert features["auth"].split() == ["LOGIN", "PLAIN"]
    assert "smtputf8" not in features  # the API takes no internationalised local parts either
    assert "starttls" not in features  # already under TLS


async def test_envelope_mistakes_are_refused_where_they_are_made(
    app_client, make_account, smtp_sink, smtp_client
):
    account = await make_account(sink=smtp_sink)
    submit = smtp_client.submit
    assert await submit(account.key, mail(), sender="not-an-address") == (
        553,
        "5.1.7 'not-an-address' is not a valid e-mail address: "
        "An email address must have an @-sign.",
    )
    code, reply = await submit(account.key, mail(), recipients=["bob@@example.com"])
    assert (code, reply) == (553, "5.1.3 Error: malformed address")  # aiosmtpd's own check
    code, reply = await submit(account.key, mail(), recipients=["bob@localhost"])
    assert code == 553
    assert reply.startswith("5.1.3 'bob@localhost' is not a valid e-mail address")
    code, reply = await submit(
        account.key, mail(), recipients=[f"r{n}@example.com" for n in range(51)]
    )
    assert (code, reply) == (452, "4.5.3 a message takes at most 50 recipients")
    assert await message_count(app_client) == 0


async def test_a_suppressed_recipient_is_refused_at_rcpt(
    app_client, make_account, smtp_sink, smtp_client
):
    account = await make_account(sink=smtp_sink)
    await app_client.app.state.services.suppressions.add(account.user.id, "Gone@Example.com")
    code, reply = await smtp_client.submit(account.key, mail(to="gone@example.com"))
    assert (code, reply) == (
        550,
        "5.7.1 gone@example.com is on this account's suppression list (manual)",
    )
    assert await message_count(app_client) == 0


async def test_an_oversize_message_is_refused_after_its_data(
    app_client, make_account, smtp_sink, smtp_client
):
    account = await make_account(sink=smtp_sink)
    settings = app_client.app.state.services.settings
    settings.max_body_bytes = 4096
    big = mail()
    big.set_content(("y" * 70 + "\n") * 100)
    code, reply = await smtp_client.submit(
        account.key, wire_bytes(big), sender="news@shop.example", recipients=["ann@example.com"]
    )
    assert (code, reply) == (552, "5.3.4 the message is too big: at most 4096 bytes")
    assert await message_count(app_client) == 0


async def test_bad_headers_are_refused_with_what_is_wrong(
    app_client, make_account, smtp_sink, smtp_client
):
    account = await make_account(sink=smtp_sink)
    refused_before = refused_count()
    cases = [
        (mail(x_mailpass_metadata="[1, 2]"), "5.6.0 X-MailPass-Metadata: must be a JSON object"),
        (mail(x_mailpass_metadata="{oops"), "5.6.0 X-MailPass-Metadata: not valid JSON"),
        (
            mail(x_mailpass_track_opens="maybe"),
            "5.6.0 X-MailPass-Track-Opens: 'maybe' is neither true nor false",
        ),
        (
            mail(x_mailpass_tags=",".join(f"t{n}" for n in range(21))),
            "5.6.0 X-MailPass-Tags: at most 20 tags",
        ),
    ]
    for message, expected in cases:
        code, reply = await smtp_client.submit(account.key, message)
        assert (code, reply) == (554, expected)
    no_from = b"To: ann@example.com\r\nSubject: hi\r\n\r\nhello\r\n"
    assert await smtp_client.submit(
        account.key, no_from, sender="news@shop.example", recipients=["ann@example.com"]
    ) == (554, "5.6.0 the message has no From header field")
    bad_from = b"From: news@@shop.example\r\nTo: ann@example.com\r\nSubject: hi\r\n\r\nhello\r\n"
    code, reply = await smtp_client.submit(
        account.key, bad_from, sender="news@shop.example", recipients=["ann@example.com"]
    )
    assert code == 553
    assert reply.startswith("5.1.7 From: '@shop.example' is not a valid e-mail address")
    assert await message_count(app_client) == 0
    assert refused_count() == refused_before + 6  # mailpass_relay_messages_total


async def test_an_unknown_control_header_is_named_back_and_left_in_the_mail(
    app_client, make_account, smtp_sink, smtp_client, drain
):
    account = await make_account(sink=smtp_sink)
    code, reply = await smtp_client.submit(account.key, mail(x_mailpass_tag="typo"))
    assert code == 250
    assert reply.endswith("(not acted on: x-mailpass-tag)")  # named as the client wrote it
    assert await drain() == 0
    [received] = await smtp_sink.wait_for(1)
    assert b"x-mailpass-tag: typo\r\n" in received.data


async def test_failed_authentications_block_the_address(
    app_client, make_account, smtp_sink, relay, smtp_ca_file
):
    """The API's throttle: smtplib's login tries PLAIN, then LOGIN (two failures a login);
    at the limit the address is refused at connection, and by the API as well."""
    account = await make_account(sink=smtp_sink)
    app_client.app.state.services.auth_throttle.limit = 4
    context = ssl.create_default_context(cafile=str(smtp_ca_file))

    def try_login(password: str) -> tuple[int, bytes]:
        with smtplib.SMTP("localhost", relay.port, timeout=10) as client:
            client.starttls(context=context)
            try:
                client.login("mailpass", password)
            except smtplib.SMTPAuthenticationError as exc:
                return exc.smtp_code, exc.smtp_error
            return 235, b""

    def connect() -> tuple[int, bytes]:
        try:
            with smtplib.SMTP("localhost", relay.port, timeout=10) as client:
                return client.noop()
        except smtplib.SMTPConnectError as exc:
            return exc.smtp_code, exc.smtp_error

    answers = [await asyncio.to_thread(try_login, "mp_live_guess") for _ in range(2)]
    assert answers == [(535, b"5.7.8 invalid API key")] * 2
    code, text = await asyncio.to_thread(connect)
    assert code == 421
    assert text.startswith(b"4.7.0 too many failed authentications from this address")
    answer = await app_client.get("/api/v1/mail/status/x@y", headers=account.headers)
    assert answer.status_code == 429


async def test_implicit_tls_port_takes_mail(
    app_client, make_account, smtp_sink, relay, smtp_ca_file, drain
):
    account = await make_account(sink=smtp_sink)
    context = ssl.create_default_context(cafile=str(smtp_ca_file))

    def send() -> dict:
        with smtplib.SMTP_SSL("localhost", relay.smtps_port, timeout=10, context=context) as client:
            client.login("mailpass", account.key)
            return client.send_message(mail())

    assert await asyncio.to_thread(send) == {}
    assert await drain() == 0
    [received] = await smtp_sink.wait_for(1)
    assert b"with ESMTPSA;" in received.data


async def test_a_trusted_network_sends_without_auth(
    app_client, make_account, smtp_sink, relay, drain
):
    account = await make_account(sink=smtp_sink)
    services = app_client.app.state.services
    async with services.database.read() as connection:
        key_id = (await connection.execute(sa.select(api_keys.c.id))).scalar_one()
    # A network bound to a key that does not exist is only looked up for its own clients.
    services.settings.smtp_trusted_networks = f"10.0.0.0/8=999, 127.0.0.0/8={key_id}"
    trusted = await start_relay(
        services.settings, services.relay(), "127.0.0.1", smtp_port=0, smtps_port=None
    )
    port = trusted.servers[0].sockets[0].getsockname()[1]

    def send() -> dict:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            return client.send_message(mail())

    try:
        assert await asyncio.to_thread(send) == {}
    finally:
        await trusted.close()
    assert await drain() == 0
    [received] = await smtp_sink.wait_for(1)
    assert b"with ESMTP;" in received.data  # neither TLS nor AUTH
    assert account.key


async def test_a_client_stalling_mid_data_is_cut_off_and_nothing_is_kept(
    app_client, make_account, smtp_sink, relay
):
    """A message has a deadline from MAIL on (aiosmtpd's idle timeout alone restarts with
    every command); the stalled session is closed and holds nothing."""
    account = await make_account(sink=smtp_sink)
    app_client.app.state.services.settings.smtp_message_timeout = 0.5
    app_client.app.state.services.settings.smtp_allow_plaintext_auth = True
    reader, writer = await asyncio.open_connection("127.0.0.1", relay.port)

    async def say(line: bytes) -> bytes:
        writer.write(line + b"\r\n")
        answer = b""
        while True:
            got = await asyncio.wait_for(reader.readline(), 5)
            answer += got
            if got[3:4] == b" ":
                return answer

    await reader.readline()  # greeting
    await say(b"EHLO client.example")
    plain = base64.b64encode(b"\0mailpass\0" + account.key.encode())
    assert (await say(b"AUTH PLAIN " + plain)).startswith(b"235")
    assert (await say(b"MAIL FROM:<news@shop.example>")).startswith(b"250")
    assert (await say(b"RCPT TO:<ann@example.com>")).startswith(b"250")
    assert (await say(b"DATA")).startswith(b"354")
    writer.write(b"From: news@shop.example\r\nSubject: half\r\n")  # and then nothing
    started = time.monotonic()
    closing = await asyncio.wait_for(reader.read(), 5)
    assert closing == b"421 4.4.2 the message took too long; closing\r\n"
    assert time.monotonic() - started < 3
    writer.close()
    assert await message_count(app_client) == 0
    assert relay.listeners.state.per_address == {}  # the session is gone


async def test_sessions_are_capped_per_address_and_per_key(
    app_client, make_account, smtp_sink, relay
):
    account = await make_account(sink=smtp_sink)
    settings = app_client.app.state.services.settings
    settings.smtp_connections_per_address = 2
    settings.smtp_connections_per_key = 1
    settings.smtp_allow_plaintext_auth = True
    opened = [await asyncio.open_connection("127.0.0.1", relay.port) for _ in range(3)]
    greetings = [await asyncio.wait_for(reader.readline(), 5) for reader, _ in opened]
    assert [greeting[:4] for greeting in greetings[:2]] == [b"220 ", b"220 "]
    assert greetings[2] == b"421 4.7.0 too many connections from this address; try again later\r\n"
    plain = base64.b64encode(b"\0mailpass\0" + account.key.encode())
    answers = []
    for reader, writer in opened[:2]:
        writer.write(b"EHLO client.example\r\nAUTH PLAIN " + plain + b"\r\n")
        while not (await asyncio.wait_for(reader.readline(), 5)).startswith(b"250 "):
            pass
        answers.append(await asyncio.wait_for(reader.readline(), 5))
    assert answers == [
        b"235 2.7.0 Authentication successful\r\n",
        b"454 4.7.0 too many sessions with this API key; try again later\r\n",
    ]
    for _, writer in opened:
        writer.close()


async def test_a_key_revoked_mid_session_stops_its_next_message(
    app_client, make_account, smtp_sink, relay, smtp_ca_file, monkeypatch
):
    from mailpass.accounts import service as accounts
    from mailpass.relay import service as relay_service

    monkeypatch.setattr(relay_service, "SENDER_FRESHNESS", 0.0)  # else within a second
    account = await make_account(sink=smtp_sink)
    services = app_client.app.state.services
    async with services.database.read() as connection:
        key_id = (await connection.execute(sa.select(api_keys.c.id))).scalar_one()
    context = ssl.create_default_context(cafile=str(smtp_ca_file))
    client = await asyncio.to_thread(smtplib.SMTP, "localhost", relay.port, timeout=10)
    try:
        await asyncio.to_thread(client.starttls, context=context)
        await asyncio.to_thread(client.login, "mailpass", account.key)
        assert (await asyncio.to_thread(client.mail, "news@shop.example"))[0] == 250
        await asyncio.to_thread(client.rset)
        await accounts.revoke_key(services.database, key_id)
        code, reply = await asyncio.to_thread(client.mail, "news@shop.example")
        assert (code, reply) == (530, b"5.7.0 this API key has been revoked: authenticate again")
    finally:
        await asyncio.to_thread(client.close)


async def test_flow_control_slows_the_relay_while_the_queue_is_behind(
    app_client, make_account, smtp_sink, relay, smtp_ca_file, queue_batch, drain
):
    """Postfix's in_flow_delay: more than the backlog due with a worker running, and each new
    message waits; with no worker, or once the queue caught up, none does."""
    from mailpass.clock import utcnow
    from mailpass.delivery.workers import register_worker

    account = await make_account(sink=smtp_sink)
    services = app_client.app.state.services
    services.settings.smtp_flow_backlog = 3
    flow = relay.listeners.state.flow
    flow.backlog, flow.delay = 3, 0.4
    items = [{"to": f"r{n}@example.com", "subject": "queued", "text": "x"} for n in range(5)]
    await queue_batch(account, items)
    context = ssl.create_default_context(cafile=str(smtp_ca_file))

    def timed_mail() -> float:
        with smtplib.SMTP("localhost", relay.port, timeout=10) as client:
            client.starttls(context=context)
            client.login("mailpass", account.key)
            started = time.monotonic()
            assert client.mail("news@shop.example")[0] == 250
            return time.monotonic() - started

    await flow.look()
    assert flow.behind is False  # five due, but no worker to catch up
    async with services.database.transaction() as connection:
        await register_worker(connection, "elsewhere", 1, utcnow())
    await flow.look()
    assert flow.behind is True
    assert await asyncio.to_thread(timed_mail) >= 0.4
    assert await drain() == 0
    await flow.look()
    assert flow.behind is False
    assert await asyncio.to_thread(timed_mail) < 0.4


async def test_a_silent_client_is_closed_after_the_idle_timeout(app_client, relay):
    app_client.app.state.services.settings.smtp_idle_timeout = 0.3
    reader, writer = await asyncio.open_connection("127.0.0.1", relay.port)
    greeting = await asyncio.wait_for(reader.readline(), 5)
    assert greeting.startswith(b"220 ")
    started = time.monotonic()
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed, having said nothing more
    assert time.monotonic() - started < 3
    writer.close()
    assert relay.listeners.state.per_address == {}
