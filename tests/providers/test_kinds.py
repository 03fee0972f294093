"""What a provider's server may be: a host name or an IP address, checked when it is added."""

from __future__ import annotations

import pytest

from mailpass.providers.kinds import resolve_connection


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("smtp.example.com", "smtp.example.com"),
        ("  SMTP.Example.COM ", "smtp.example.com"),
        ("localhost", "localhost"),
        ("mail_relay", "mail_relay"),  # a container's name
        ("smtp.example.com.", "smtp.example.com."),
        ("127.0.0.1", "127.0.0.1"),
        ("::1", "::1"),
        ("smtp.bücher.example", "smtp.bücher.example"),
    ],
)
def test_host_names_and_addresses_are_taken(given: str, stored: str) -> None:
    assert resolve_connection("smtp", host=given).host == stored


@pytest.mark.parametrize(
    "given",
    [
        "smtp example.com",
        "smtp://smtp.example.com",
        "smtp.example.com:587",
        "-smtp.example.com",
        "smtp..example.com",
        "[::1]",
        "a" * 64 + ".example.com",
        ".".join(["a" * 60] * 5),  # longer than 253 characters
    ],
)
def test_anything_else_is_refused_naming_the_host(given: str) -> None:
    with pytest.raises(ValueError, match="neither a host name nor an IP address") as refused:
        resolve_connection("smtp", host=given)
    assert repr(given.strip().lower()) in str(refused.value)


def test_a_blank_host_is_a_missing_one() -> None:
    with pytest.raises(ValueError, match="needs a host"):
        resolve_connection("smtp", host="   ")


def test_a_managed_relay_may_be_given_another_host() -> None:
    assert resolve_connection("sendgrid").host == "smtp.sendgrid.net"
    with pytest.raises(ValueError, match="neither"):
        resolve_connection("sendgrid", host="smtp.sendgrid.net/x")
