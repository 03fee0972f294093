"""MAILPASS_PROVIDER_NETWORKS: providers only where the operator allows, checked on the address
actually connected to. Real aiosmtpd servers, plain and TLS."""

from __future__ import annotations

import re

import pytest

from mailpass.config import Settings
from mailpass.core.client_ip import parse_networks
from mailpass.providers.smtp import ProbeError, SmtpTransport, probe
from mailpass.providers.transport import PermanentDeliveryError

MAIL = b"From: a@x.example\r\nTo: b@y.example\r\nSubject: hi\r\n\r\nhello\r\n"
LOOPBACK = parse_networks("127.0.0.0/8, ::1")
ELSEWHERE = parse_networks("10.0.0.0/8, 192.168.0.0/16")


@pytest.mark.parametrize("tls_mode", ["none", "starttls", "tls"])
async def test_a_provider_inside_the_networks_is_reached_by_name_with_tls_verified(
    make_smtp_sink, tls_mode
):
    sink = await make_smtp_sink(tls_mode=tls_mode)
    # By name: the name is resolved and checked, the certificate checked against the name.
    host = "localhost" if tls_mode != "none" else "127.0.0.1"
    transport = SmtpTransport(sink.endpoint(host=host, networks=LOOPBACK))
    try:
        result = await transport.send("a@x.example", ["b@y.example"], MAIL)
    finally:
        await transport.close()
    assert result.reply.startswith("250")
    assert len(sink.messages) == 1


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_a_provider_outside_the_networks_is_refused_for_good_before_any_connection(
    make_smtp_sink, host
):
    sink = await make_smtp_sink()
    transport = SmtpTransport(sink.endpoint(host=host, networks=ELSEWHERE))
    try:
        with pytest.raises(PermanentDeliveryError) as refused:
            await transport.send("a@x.example", ["b@y.example"], MAIL)
    finally:
        await transport.close()
    assert refused.value.reply.startswith(f"{host} is at 127.0.0.1")
    assert "outside the networks this installation sends to (MAILPASS_PROVIDER_NETWORKS)" in (
        refused.value.reply
    )
    assert not refused.value.unreachable  # the provider's settings, not its health
    assert sink.messages == []
    assert sink.current_connections == 0


async def test_the_connection_test_says_why_and_shows_nothing_of_the_server(make_smtp_sink):
    sink = await make_smtp_sink()
    with pytest.raises(ProbeError) as refused:
        await probe(sink.endpoint(networks=ELSEWHERE))
    assert "MAILPASS_PROVIDER_NETWORKS" in str(refused.value)
    assert not any("220" in line for line in refused.value.transcript)


def test_the_setting_is_checked_when_the_process_starts():
    assert Settings(provider_networks="").provider_network_list is None
    assert Settings(provider_networks="10.0.0.0/8, fd00::/8").provider_network_list == (
        parse_networks("10.0.0.0/8, fd00::/8")
    )
    with pytest.raises(ValueError, match=re.escape("'10.0.0.300' is not an IP address or network")):
        Settings(provider_networks="10.0.0.0/8, 10.0.0.300")


async def test_the_worker_fails_such_a_message_without_marking_the_provider_down(
    settings, make_account, smtp_sink, app_client
):
    settings.provider_networks = "10.0.0.0/8"
    account = await make_account(sink=smtp_sink)
    response = await app_client.post(
        "/api/v1/mail/send",
        json={"to": "user@example.com", "subject": "Hi", "text": "Hello"},
        headers=account.headers,
    )
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "SEND_FAILED"
    assert "MAILPASS_PROVIDER_NETWORKS" in error["message"]
    assert smtp_sink.messages == []
