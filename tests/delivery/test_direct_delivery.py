"""Direct delivery ("MailPass SMTP") on both databases: no relay, each recipient domain's MX
hosts as a real DNS server on 127.0.0.1 names them, real aiosmtpd MX servers on distinct
127.0.0.x addresses (one greylisting, one with TLS from trustme, one down). What arrived is
parsed with ``email.parser`` and its DKIM signature checked with dkimpy against the record the
DNS serves."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import dkim
import pytest
import sqlalchemy as sa

from dns_fixtures import LocalDns
from mailpass.config import Settings

SEND = "/api/v1/mail/send"
DOMAIN = "shop.test"
MX_ADDRESSES = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6"]


@pytest.fixture
async def mx(make_smtp_sink):
    """``await mx(address, **options)``: an SMTP sink at ``address`` on the port every MX of
    the test shares (MX hosts are reached on one port: 25 in life)."""
    port: list[int] = []

    async def make(address: str, **options: Any):
        sink = await make_smtp_sink(host=address, port=port[0] if port else 0, **options)
        port.append(sink.port)
        return sink

    make.port = port  # type: ignore[attr-defined]
    return make


@pytest.fixture
def settings(settings: Settings, local_dns: LocalDns) -> Settings:
    return settings.model_copy(
        update={
            "dns_resolver": local_dns.address,
            "dns_timeout": 1.0,
            "smtp_connect_timeout": 10.0,  # a loaded CI machine can take over 1 s to greet
            "direct_helo": "mailpass.shop.test",
        }
    )


async def direct_account(make_account, services, local_dns: LocalDns, mx_port: int, **extra: Any):
    """An account whose default provider is direct, with ``shop.test`` verified."""
    from mailpass.providers import service as providers

    account = await make_account()
    services.settings.direct_port = mx_port
    provider = await providers.add_provider(
        services.database,
        services.secrets,
        account.user,
        providers.NewProvider(name="direct", kind="direct", make_default=True, **extra),
    )
    domain = await services.domains.add(account.user.id, DOMAIN, extra.pop("algorithm", None))
    key = domain.keys[0]
    local_dns.add(key.record_name(DOMAIN), "TXT", key.record_value)
    local_dns.add(DOMAIN, "TXT", "v=spf1 ip4:127.0.0.1 ~all")
    checked = await services.domains.verify(account.user.id, domain.id)
    assert checked is not None
    assert checked[0].is_verified
    account.provider = provider
    return account


def message(recipients: list[str], **more: Any) -> dict[str, Any]:
    return {
        "from_email": f"news@{DOMAIN}",
        "from_name": "Shop",
        "to": recipients,
        "subject": "Your order",
        "text": "Thank you for your order.\n",
        "html": "<p>Thank you for your <b>order</b>.</p>",
        **more,
    }


def assert_signed(local_dns: LocalDns, data: bytes) -> None:
    assert data.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=shop.test;")
    assert dkim.verify(data, dnsfunc=local_dns.lookup_txt), data[:600]


@pytest.fixture
async def app_services(app_client):
    return app_client.app.state.services


async def test_each_domain_gets_its_part_from_its_mx_signed_and_over_tls(
    app_client, app_services, make_account, local_dns, mx
):
    one = await mx("127.0.0.2", tls_mode="starttls", cert_names=("mx1.one.test",))
    two = await mx("127.0.0.3")  # no MX record: its domain's own address (RFC 5321 5.1)
    local_dns.add("one.test", "MX", "10 mx1.one.test.")
    local_dns.add("mx1.one.test", "A", "127.0.0.2")
    local_dns.add("two.test", "A", "127.0.0.3")
    account = await direct_account(make_account, app_services, local_dns, one.port)

    answer = await app_client.post(
        SEND,
        json=message(["ann@one.test", "bob@two.test"], cc=["cat@one.test"]),
        headers=account.headers,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"]["status"] == "sent"
    [first] = await one.wait_for(1)
    [second] = await two.wait_for(1)
    assert sorted(first.rcpt_tos) == ["ann@one.test", "cat@one.test"]
    assert second.rcpt_tos == ["bob@two.test"]
    assert first.tls is True  # offered, so taken (its certificate is not checked: opportunistic)
    assert second.tls is False  # not offered: plain text, as an MTA does
    for received in (first, second):
        assert_signed(local_dns, received.data)
        assert received.message["Subject"] == "Your order"
        assert received.message["To"] == "ann@one.test, bob@two.test"


async def test_mx_hosts_are_tried_in_preference_order_past_one_that_is_down(
    app_client, app_services, make_account, local_dns, mx
):
    backup = await mx("127.0.0.3")
    # 127.0.0.2 listens on nothing at that port: refused, the next MX host takes it.
    local_dns.add("three.test", "MX", "20 backup.three.test.", "10 primary.three.test.")
    local_dns.add("primary.three.test", "A", "127.0.0.2")
    local_dns.add("backup.three.test", "A", "127.0.0.3")
    account = await direct_account(make_account, app_services, local_dns, backup.port)
    answer = await app_client.post(SEND, json=message(["dee@three.test"]), headers=account.headers)
    assert answer.status_code == 200, answer.text
    [received] = await backup.wait_for(1)
    assert_signed(local_dns, received.data)
    assert ("primary.three.test", "A") in local_dns.questions  # asked first


async def test_a_null_mx_or_a_missing_domain_fails_at_once_and_says_why(
    app_client, app_services, make_account, local_dns, mx
):
    sink = await mx("127.0.0.2")
    local_dns.add("nomail.test", "MX", "0 .")
    account = await direct_account(make_account, app_services, local_dns, sink.port)
    answer = await app_client.post(SEND, json=message(["x@nomail.test"]), headers=account.headers)
    assert answer.status_code == 500
    assert answer.json()["error"]["code"] == "SEND_FAILED"
    assert "null MX, RFC 7505" in answer.json()["error"]["message"]
    answer = await app_client.post(SEND, json=message(["x@gone.test"]), headers=account.headers)
    assert "gone.test does not exist" in answer.json()["error"]["message"]
    assert sink.messages == []


async def test_mail_from_a_domain_not_verified_is_refused_with_what_to_do(
    app_client, app_services, make_account, local_dns, mx
):
    sink = await mx("127.0.0.2")
    local_dns.add("one.test", "A", "127.0.0.2")
    account = await direct_account(make_account, app_services, local_dns, sink.port)
    answer = await app_client.post(
        SEND,
        json={**message(["ann@one.test"]), "from_email": "news@other.test"},
        headers=account.headers,
    )
    assert answer.status_code == 500
    error = answer.json()["error"]["message"]
    assert "mail from other.test cannot be delivered directly" in error
    assert "mailpass domains add" in error
    assert sink.messages == []


async def test_a_greylisting_domain_is_retried_alone_and_nobody_gets_it_twice(
    fast_retries, app_client, app_services, make_account, local_dns, mx, drain, status_of
):
    quick = await mx("127.0.0.2")
    grey = await mx("127.0.0.3", data_replies=["451 4.7.1 Greylisted, please try again later"])
    local_dns.add("one.test", "A", "127.0.0.2")
    local_dns.add("grey.test", "A", "127.0.0.3")
    account = await direct_account(make_account, app_services, local_dns, quick.port)

    answer = await app_client.post(
        SEND, json=message(["ann@one.test", "gus@grey.test"]), headers=account.headers
    )
    assert answer.status_code == 200, answer.text  # the first MX took its part
    message_id = answer.json()["data"]["message_id"]
    await quick.wait_for(1)
    record = await status_of(account, message_id)
    assert record["status"] == "queued"
    assert "deferred: gus@grey.test: 451 4.7.1 Greylisted" in record["error_message"]

    await drain()
    [retried] = await grey.wait_for(1)
    assert retried.rcpt_tos == ["gus@grey.test"]
    assert_signed(local_dns, retried.data)
    assert len(quick.messages) == 1  # not sent to ann@one.test a second time
    record = await status_of(account, message_id)
    assert record["status"] == "sent"
    assert record["attempts"] == 2


async def test_the_queue_delivers_a_batch_to_many_domains(
    app_client, app_services, make_account, local_dns, mx, queue_batch, drain
):
    sinks = [await mx(address) for address in MX_ADDRESSES]
    for number, address in enumerate(MX_ADDRESSES):
        local_dns.add(f"d{number}.test", "MX", f"10 mx.d{number}.test.")
        local_dns.add(f"mx.d{number}.test", "A", address)
    account = await direct_account(make_account, app_services, local_dns, sinks[0].port)
    items = [
        message([f"user{i}@d{i % len(MX_ADDRESSES)}.test", f"other{i}@d{(i + 1) % 5}.test"])
        for i in range(20)
    ]
    queued = await queue_batch(account, items)
    assert len(queued["messages"]) == 20
    started = time.monotonic()
    await drain()
    assert time.monotonic() - started < 10
    for sink in sinks:
        received = await sink.wait_for(8)
        assert len(received) == 8  # 4 messages a domain in each of its two roles
        for item in received:
            assert_signed(local_dns, item.data)


async def test_require_mode_never_sends_in_plain_text_and_checks_certificates(
    app_client, app_services, make_account, local_dns, mx, smtp_ca_file
):
    plain = await mx("127.0.0.2")
    secure = await mx("127.0.0.3", tls_mode="starttls", cert_names=("mx.secure.test",))
    local_dns.add("plain.test", "MX", "10 mx.plain.test.")
    local_dns.add("mx.plain.test", "A", "127.0.0.2")
    local_dns.add("secure.test", "MX", "10 mx.secure.test.")
    local_dns.add("mx.secure.test", "A", "127.0.0.3")
    app_services.settings.direct_tls = "require"
    app_services.settings.smtp_ca_file = smtp_ca_file
    account = await direct_account(make_account, app_services, local_dns, plain.port)

    answer = await app_client.post(SEND, json=message(["a@plain.test"]), headers=account.headers)
    assert answer.status_code == 500
    assert "does not offer STARTTLS" in answer.json()["error"]["message"]
    assert plain.messages == []

    answer = await app_client.post(SEND, json=message(["a@secure.test"]), headers=account.headers)
    assert answer.status_code == 200, answer.text
    [received] = await secure.wait_for(1)
    assert received.tls is True


async def test_a_direct_providers_test_checks_that_the_dns_answers(
    app_client, app_services, make_account, local_dns, mx
):
    sink = await mx("127.0.0.2")
    account = await direct_account(make_account, app_services, local_dns, sink.port)
    url = f"/api/v1/providers/{account.provider.id}/test"
    tested = (await app_client.post(url, headers=account.headers)).json()["data"]
    assert tested["ok"] is True, tested
    assert tested["transcript"][-1] == "I: the DNS resolver answers"
    local_dns.silent.add("mailpass-probe.invalid")
    tested = (await app_client.post(url, headers=account.headers)).json()["data"]
    assert tested["ok"] is False
    assert tested["error"].startswith("the DNS resolver does not answer")


async def test_a_slow_domain_holds_up_no_other_and_connections_are_reused(
    app_client, app_services, make_account, local_dns, mx, queue_batch, drain
):
    quick = await mx("127.0.0.2")
    slow = await mx("127.0.0.3", delay_data=1.0)
    local_dns.add("quick.test", "A", "127.0.0.2")
    local_dns.add("slow.test", "A", "127.0.0.3")
    account = await direct_account(make_account, app_services, local_dns, quick.port)
    app_services.settings.direct_domain_connections = 2
    items = [message([f"s{i}@slow.test"]) for i in range(6)]
    items += [message([f"q{i}@quick.test"]) for i in range(20)]
    await queue_batch(account, items)
    started = time.monotonic()
    draining = asyncio.create_task(drain(timeout=20))
    await quick.wait_for(20, timeout=10)
    quick_done = time.monotonic() - started
    await draining
    slow_done = time.monotonic() - started
    assert len(slow.messages) == 6
    # The slow domain takes 1 s a message, 2 at a time: 3 s; the quick one is not held up.
    assert quick_done < 1.5 < 2.5 < slow_done
    assert slow.max_concurrent_connections <= 2
    assert quick.connections_opened <= 2  # reused across its 20 messages


class PolicyServer:
    """HTTPS on 127.0.0.7, serving each ``mta-sts.<domain>``'s policy by its Host (a trustme
    certificate for each policy host)."""

    def __init__(self, ca, policies: dict[str, str]) -> None:
        import ssl
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                host = (self.headers.get("Host") or "").split(":")[0]
                body = policies.get(host)
                if self.path != "/.well-known/mta-sts.txt" or body is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.7", 0), Handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(*policies).configure_cert(context)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def policy_server(smtp_ca):
    servers: list[PolicyServer] = []

    def make(policies: dict[str, str]) -> PolicyServer:
        server = PolicyServer(smtp_ca, policies)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


def policy(mode: str, *mx: str) -> str:
    return (
        "version: STSv1\nmode: "
        + mode
        + "\n"
        + "".join(f"mx: {h}\n" for h in mx)
        + ("max_age: 86400\n")
    )


async def test_an_enforced_mta_sts_policy_is_obeyed(
    app_client, app_services, make_account, local_dns, mx, policy_server, smtp_ca_file, status_of
):
    named = await mx("127.0.0.2", tls_mode="starttls", cert_names=("mx1.sts.test",))
    rogue = await mx("127.0.0.3")  # preferred by MX, not named by the policy, no TLS
    bad_cert = await mx("127.0.0.4", tls_mode="starttls", cert_names=("elsewhere.test",))
    server = policy_server(
        {
            "mta-sts.sts.test": policy("enforce", "mx1.sts.test"),
            "mta-sts.badtls.test": policy("enforce", "*.badtls.test"),
            "mta-sts.trying.test": policy("testing", "mx1.sts.test"),
        }
    )
    for domain in ("sts.test", "badtls.test", "trying.test"):
        local_dns.add(f"_mta-sts.{domain}", "TXT", "v=STSv1; id=20261208T000000;")
        local_dns.add(f"mta-sts.{domain}", "A", "127.0.0.7")
    local_dns.add("sts.test", "MX", "5 rogue.sts.test.", "10 mx1.sts.test.")
    local_dns.add("trying.test", "MX", "5 rogue.sts.test.", "10 mx1.sts.test.")
    local_dns.add("rogue.sts.test", "A", "127.0.0.3")
    local_dns.add("mx1.sts.test", "A", "127.0.0.2")
    local_dns.add("badtls.test", "MX", "10 mx.badtls.test.")
    local_dns.add("mx.badtls.test", "A", "127.0.0.4")
    app_services.settings.direct_mta_sts_port = server.port
    app_services.settings.https_ca_file = smtp_ca_file
    app_services.settings.smtp_ca_file = smtp_ca_file
    account = await direct_account(make_account, app_services, local_dns, named.port)

    answer = await app_client.post(SEND, json=message(["ann@sts.test"]), headers=account.headers)
    assert answer.status_code == 200, answer.text
    [received] = await named.wait_for(1)
    assert received.tls is True
    assert rogue.messages == []

    # A certificate not valid for the MX's name: never delivered, and never failed for good.
    answer = await app_client.post(
        SEND, json=message(["ann@badtls.test", "bob@sts.test"]), headers=account.headers
    )
    assert answer.status_code == 200, answer.text
    record = await status_of(account, answer.json()["data"]["message_id"])
    assert record["status"] == "queued"
    assert "deferred: ann@badtls.test" in record["error_message"]
    assert bad_cert.messages == []

    # "testing" is only reported: mail goes as without a policy, to the preferred MX.
    answer = await app_client.post(SEND, json=message(["cy@trying.test"]), headers=account.headers)
    assert answer.status_code == 200, answer.text
    assert len(await rogue.wait_for(1)) == 1


async def test_every_mime_shape_arrives_with_a_signature_that_verifies(
    app_client, app_services, make_account, local_dns, mx
):
    import base64

    sink = await mx("127.0.0.2")
    local_dns.add("one.test", "A", "127.0.0.2")
    account = await direct_account(make_account, app_services, local_dns, sink.port)
    pdf = bytes(range(256)) * 40
    png = b"\x89PNG\r\n\x1a\n" + bytes(300)
    shapes = [
        {"text": "Plain text only.\n"},
        {"html": "<p>HTML only, with trailing spaces   </p>\n\n\n"},
        {
            "html": '<p>Logo: <img src="cid:logo"></p>',
            "text": "Logo.",
            "attachments": [
                {"filename": "invoice.pdf", "content": base64.b64encode(pdf).decode()},
                {
                    "filename": "logo.png",
                    "content": base64.b64encode(png).decode(),
                    "content_id": "logo",
                },
            ],
            "headers": {"X-Order": "1042", "X-Note": "déjà vu"},
            "list_unsubscribe": ["https://shop.test/u/1", "mailto:u@shop.test"],
            "cc": ["cat@one.test"],
            "reply_to": "help@shop.test",
        },
    ]
    for shape in shapes:
        body = {
            "to": "ann@one.test",
            "subject": "Résumé of your order",
            "from_email": f"news@{DOMAIN}",
            **shape,
        }
        answer = await app_client.post(SEND, json=body, headers=account.headers)
        assert answer.status_code == 200, answer.text
    received = await sink.wait_for(len(shapes))
    for item in received:
        assert_signed(local_dns, item.data)
    last = received[-1].message
    parts = {part.get_filename(): part.get_payload(decode=True) for part in last.walk()}
    assert parts["invoice.pdf"] == pdf
    signature = received[-1].data.split(b"\r\n\r\n", 1)[0]
    assert b"list-unsubscribe:list-unsubscribe" in signature.replace(b"\r\n\t", b"")


async def test_a_dead_domain_never_marks_the_direct_provider_down(
    app_client, app_services, make_account, local_dns, mx, queue_batch, drain
):
    from mailpass.storage.tables import providers

    alive = await mx("127.0.0.2")
    local_dns.add("alive.test", "A", "127.0.0.2")
    local_dns.add("dead.test", "A", "127.0.0.6")  # nothing listens there
    account = await direct_account(make_account, app_services, local_dns, alive.port)
    await queue_batch(account, [message([f"x{i}@dead.test"]) for i in range(5)])
    await drain(timeout=3)
    await queue_batch(account, [message(["ann@alive.test"])])
    await drain(timeout=3)
    assert len(await alive.wait_for(1)) == 1  # not held behind the dead domain
    async with app_services.database.read() as connection:
        row = (
            await connection.execute(
                sa.select(providers.c.failure_streak, providers.c.down_until).where(
                    providers.c.id == account.provider.id
                )
            )
        ).one()
    assert row.failure_streak == 0
    assert row.down_until is None
