"""Parsing mailboxes and header text as API clients send them."""

from __future__ import annotations

import pytest

from mailpass.core.addresses import (
    AddressError,
    HeaderValueError,
    allow_single_label_domains,
    check_header_text,
    parse_mailbox,
    parse_mailbox_list,
)
from mailpass.core.outgoing import Address


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("user@example.com", Address("user@example.com")),
        ("  user@example.com\t", Address("user@example.com")),
        ("<user@example.com>", Address("user@example.com")),
        ("Jane Doe <jane@example.com>", Address("jane@example.com", "Jane Doe")),
        ("Jane Doe<jane@example.com>", Address("jane@example.com", "Jane Doe")),
        ("Dr. Who <who@example.com>", Address("who@example.com", "Dr. Who")),
        ('"Doe, Jane" <jane@example.com>', Address("jane@example.com", "Doe, Jane")),
        ('"Sales (EU); Team" <s@example.com>', Address("s@example.com", "Sales (EU); Team")),
        (r'"Say \"hi\" \\o/" <a@example.com>', Address("a@example.com", 'Say "hi" \\o/')),
        ('"" <a@example.com>', Address("a@example.com")),
        ("山田 太郎 <taro@example.jp>", Address("taro@example.jp", "山田 太郎")),
        ("🎉 Party <party@example.com>", Address("party@example.com", "🎉 Party")),
        ("user@bücher.example", Address("user@xn--bcher-kva.example")),
        ("Jörg <Joerg@Bücher.Example>", Address("Joerg@xn--bcher-kva.example", "Jörg")),
    ],
)
def test_parse_mailbox_accepts(raw: str, expected: Address) -> None:
    assert parse_mailbox(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "it is empty"),
        ("  \t ", "it is empty"),
        ("bob@@example.com", "after the @-sign"),
        ("bob", "@"),
        ("bob@localhost", "after the @-sign"),
        ("a@example.com, b@example.com", "only one address"),
        ("a@example.com; b@example.com", "only one address"),
        ("Doe, Jane <jane@example.com>", "only one address"),
        ("a@example.com b@example.com", "invalid characters"),
        ("Jane <jane@example.com", "'>'"),
        ("Jane jane@example.com>", "'<'"),
        ("Jane <jane@example.com> extra", "'>'"),
        ("<>", "empty"),
        ("Jane <>", "empty"),
        ("A <b> <c@example.com>", "double quotes"),
        ("Jane (Sales) <jane@example.com>", "double quotes"),
        ("jane@example.com <jane@example.com>", "double quotes"),
        ('"Jane <jane@example.com>', "closing"),
        ('"Jane" Doe <jane@example.com>', "between the quoted name"),
        ("ü@example.com", "not supported"),
        ("Jörg <jörg@example.com>", "not supported"),
    ],
)
def test_parse_mailbox_rejects(raw: str, reason: str) -> None:
    with pytest.raises(AddressError) as caught:
        parse_mailbox(raw)
    message = str(caught.value)
    assert message.startswith(f"{raw!r} is not a valid e-mail address: ")
    assert reason in message


@pytest.mark.parametrize(
    "raw",
    [
        "jane@example.com\r\nBcc: victim@example.com",
        "jane@example.com\nBcc: victim@example.com",
        "Jane\r\nBcc: victim@example.com <jane@example.com>",
        '"Jane\rX" <jane@example.com>',
        "jane\x00@example.com",
        "Jane <jane@example.com>\n",
    ],
)
def test_parse_mailbox_rejects_header_injection(raw: str) -> None:
    with pytest.raises(AddressError, match="line breaks"):
        parse_mailbox(raw)


def test_address_error_is_a_value_error_with_its_parts() -> None:
    with pytest.raises(ValueError, match="is not a valid e-mail address") as caught:
        parse_mailbox("bob@@example.com")
    assert isinstance(caught.value, AddressError)
    assert caught.value.value == "bob@@example.com"
    assert caught.value.reason


def test_address_error_does_not_echo_huge_values() -> None:
    with pytest.raises(AddressError) as caught:
        parse_mailbox("x" * 10_000)
    assert len(str(caught.value)) < 400


def test_parse_mailbox_list_keeps_order() -> None:
    parsed = parse_mailbox_list(["b@example.com", "Ann <a@example.com>", "c@bücher.example"])
    assert parsed == (
        Address("b@example.com"),
        Address("a@example.com", "Ann"),
        Address("c@xn--bcher-kva.example"),
    )
    assert parse_mailbox_list([]) == ()


def test_parse_mailbox_list_reports_the_bad_entry() -> None:
    with pytest.raises(AddressError) as caught:
        parse_mailbox_list(["good@example.com", "bad@@example.com"])
    assert str(caught.value).startswith("'bad@@example.com' is not a valid e-mail address: ")


@pytest.mark.parametrize(
    "value",
    ["", "Your order has shipped", "こんにちは 🎉", "tab\tseparated", "=?utf-8?b?SGk=?="],
)
def test_check_header_text_returns_clean_text(value: str) -> None:
    assert check_header_text(value) == value


@pytest.mark.parametrize(
    "value",
    ["Hello\r\nBcc: victim@example.com", "Hello\nWorld", "Hello\rWorld", "nul\x00byte", "\n"],
)
def test_check_header_text_rejects_line_breaks_and_nul(value: str) -> None:
    with pytest.raises(HeaderValueError, match="must not contain line breaks") as caught:
        check_header_text(value)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    "address",
    [
        "ops@corp.local",
        "ops@mail.internal",
        "ops@nas.lan",
        "ops@router.home.arpa",
        "ops@ci.test",
        "ops@docs.example",
        "ops@hidden.onion",
    ],
)
def test_special_use_and_private_domains_are_addresses(address: str) -> None:
    """The intranets, home networks and test set-ups where self-hosted mail runs."""
    assert parse_mailbox(address).email == address


@pytest.mark.parametrize("address", ["ops@host.invalid", "ops@localhost", "ops@box.localhost"])
def test_invalid_and_localhost_stay_refused(address: str) -> None:
    with pytest.raises(AddressError, match=r"special-use or reserved name|should have a period"):
        parse_mailbox(address)


def test_single_label_hosts_only_when_allowed() -> None:
    with pytest.raises(AddressError, match="should have a period"):
        parse_mailbox("ops@mailhost")
    allow_single_label_domains(True)
    try:
        assert parse_mailbox("ops@mailhost").email == "ops@mailhost"
        assert parse_mailbox("Ops <ops@MAILHOST>").email == "ops@mailhost"
        with pytest.raises(AddressError):
            parse_mailbox("ops@localhost")  # allowed hosts are still not this machine
    finally:
        allow_single_label_domains(False)
    with pytest.raises(AddressError, match="should have a period"):
        parse_mailbox("ops@mailhost")  # no answer of the other setting is kept
