"""The relay as users run it (``mailpass smtp``, ``mailpass serve --smtp-port``) and under
faults: a database outage in the middle of a session, a process killed after its 250, a
certificate replaced while it runs."""

from __future__ import annotations

import asyncio
import os
import signal
import smtplib
import ssl
import time

import httpx
import pytest
import trustme

from mailpass.api.app import create_app
from mailpass.relay.server import start_relay
from process_fixtures import free_port, running, wait_healthy
from relay.conftest import mail


async def wait_for_port(port: int, process: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.returncode is not None:
            pytest.fail(f"exited early: {(await process.stderr.read()).decode()}")
        try:
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        writer.close()
        return
    pytest.fail(f"nothing listens on {port}")


def relay_env(cli_env, settings) -> dict[str, str]:
    return {
        **cli_env,
        "MAILPASS_SMTP_TLS_CERT": str(settings.smtp_tls_cert),
        "MAILPASS_SMTP_TLS_KEY": str(settings.smtp_tls_key),
        "MAILPASS_QUEUE_POLL_INTERVAL": "0.05",
    }


def send(port: int, key: str, ca_file, **fields: str) -> tuple[int, bytes]:
    context = ssl.create_default_context(cafile=str(ca_file))
    with smtplib.SMTP("localhost", port, timeout=10) as client:
        client.starttls(context=context)
        client.login("mailpass", key)
        message = mail(**fields)
        client.mail("news@shop.example")
        client.rcpt("ann@example.com")
        return client.data(message.as_bytes(policy=message.policy.clone(linesep="\r\n")))


async def test_a_message_survives_kill_9_right_after_its_250(
    cli_env, settings, make_account, smtp_sink, smtp_ca_file, drain, app_client
):
    account = await make_account(sink=smtp_sink)
    port = free_port()
    async with running("smtp", "--smtp-port", str(port), env=relay_env(cli_env, settings)) as proc:
        await wait_for_port(port, proc)
        code, reply = await asyncio.to_thread(send, port, account.key, smtp_ca_file)
        assert code == 250, reply
        proc.kill()  # SIGKILL: no shutdown of any kind
        await proc.wait()
    message_id = reply.decode().split()[-1]
    assert await drain() == 0  # another process's worker finds it queued
    [received] = await smtp_sink.wait_for(1)
    assert received.message["Message-ID"] == message_id


async def test_serve_runs_the_relay_beside_the_api_and_its_worker_delivers(
    cli_env, settings, make_account, smtp_sink, smtp_ca_file, database
):
    account = await make_account(sink=smtp_sink)
    http_port, smtp_port, smtps_port = free_port(), free_port(), free_port()
    args = ("serve", "--port", str(http_port), "--smtp-port", str(smtp_port))
    args += ("--smtps-port", str(smtps_port))
    async with running(*args, env=relay_env(cli_env, settings)) as server:
        await wait_healthy(f"http://127.0.0.1:{http_port}", server)
        code, reply = await asyncio.to_thread(send, smtp_port, account.key, smtp_ca_file)
        assert code == 250, reply
        [received] = await smtp_sink.wait_for(1, timeout=20)
        assert received.message["Message-ID"] == reply.decode().split()[-1]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}") as client:
            status = await client.get(
                f"/api/v1/mail/status/{received.message['Message-ID']}", headers=account.headers
            )
        assert status.json()["data"]["message"]["status"] in ("sent", "sending")


async def test_database_outage_mid_session_is_451_and_nothing_is_relayed(
    settings, postgres_proxy, make_account, smtp_sink, smtp_ca_file
):
    proxy, url = postgres_proxy
    account = await make_account(sink=smtp_sink)
    app = create_app(settings.model_copy(update={"database_url": url}))
    context = ssl.create_default_context(cafile=str(smtp_ca_file))
    async with app.router.lifespan_context(app):
        services = app.state.services
        relay = await start_relay(
            services.settings, services.relay(), "127.0.0.1", smtp_port=0, smtps_port=None
        )
        port = relay.servers[0].sockets[0].getsockname()[1]
        message = mail()
        data = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
        client = await asyncio.to_thread(smtplib.SMTP, "localhost", port, timeout=10)
        try:
            await asyncio.to_thread(client.starttls, context=context)
            await asyncio.to_thread(client.login, "mailpass", account.key)
            assert (await asyncio.to_thread(client.mail, "news@shop.example"))[0] == 250
            assert (await asyncio.to_thread(client.rcpt, "ann@example.com"))[0] == 250
            await proxy.cut()
            code, reply = await asyncio.to_thread(client.data, data)
            assert (code, reply) == (
                451,
                b"4.3.0 the message could not be recorded; try again later",
            )
            await asyncio.to_thread(client.rset)
            await proxy.restore()
            restored = time.monotonic()
            # The same session goes on once the database is back: the client tries again, as
            # a 451 tells it to, until the message is taken.
            while True:
                assert (await asyncio.to_thread(client.mail, "news@shop.example"))[0] in (250, 451)
                if (await asyncio.to_thread(client.rcpt, "ann@example.com"))[0] == 250:
                    code, reply = await asyncio.to_thread(client.data, data)
                    if code == 250:
                        break
                    assert code == 451, reply
                await asyncio.to_thread(client.rset)
                assert time.monotonic() - restored < 10
                await asyncio.sleep(0.1)
            recovered = time.monotonic() - restored
            print(f"the relay took mail again {recovered:.2f} s after the database came back")
        finally:
            await asyncio.to_thread(client.close)
            await relay.close()
        await services.worker().run(until_idle=True)
    [received] = smtp_sink.messages  # the one after the outage, once
    assert received.message["Message-ID"] == reply.decode().split()[-1]


async def test_sighup_reads_the_certificate_again(
    app_client, relay, smtp_ca, settings, make_account, tmp_path
):
    """A renewed certificate (another CA's here, so that the change shows) is used by the
    connections after SIGHUP; an unreadable one leaves the old one in use."""
    renewed_ca = trustme.CA()
    renewed = renewed_ca.issue_cert("localhost")
    settings.smtp_tls_cert.write_bytes(b"".join(blob.bytes() for blob in renewed.cert_chain_pems))
    settings.smtp_tls_key.write_bytes(renewed.private_key_pem.bytes())
    renewed_file = tmp_path / "renewed-ca.pem"
    renewed_ca.cert_pem.write_to_path(str(renewed_file))

    def handshake(ca_file) -> bool:
        try:
            with smtplib.SMTP("localhost", relay.port, timeout=10) as client:
                client.starttls(context=ssl.create_default_context(cafile=str(ca_file)))
            return True
        except ssl.SSLError:
            return False

    os.kill(os.getpid(), signal.SIGHUP)
    await asyncio.sleep(0.1)
    assert await asyncio.to_thread(handshake, renewed_file) is True

    settings.smtp_tls_key.write_bytes(b"not a key")
    os.kill(os.getpid(), signal.SIGHUP)
    await asyncio.sleep(0.1)
    assert await asyncio.to_thread(handshake, renewed_file) is True  # the last good one


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("serve", "--smtps-port", "4650"),
            "--smtps-port needs a certificate: set MAILPASS_SMTP_TLS_CERT and "
            "MAILPASS_SMTP_TLS_KEY (PEM files)",
        ),
        (("smtp", "--smtp-port", "5870"), "no such file: /nonexistent/cert.pem"),
    ],
)
async def test_the_relay_refuses_to_start_without_what_tls_needs(mailpass, args, message, settings):
    env = {}
    if args[0] == "smtp":
        env = {
            "MAILPASS_SMTP_TLS_CERT": "/nonexistent/cert.pem",
            "MAILPASS_SMTP_TLS_KEY": str(settings.smtp_tls_key),
        }
    done = await mailpass(*args, env=env)
    assert done.code == 2
    assert done.err.strip().splitlines()[-1] == f"Error: {message}"
