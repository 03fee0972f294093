"""Composed messages, read back the way a mail client would read them."""

from __future__ import annotations

import base64
import dataclasses
import email
import email.policy
import re
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.message import EmailMessage
from typing import Any

import pytest

from mailpass.core import mime
from mailpass.core.addresses import parse_mailbox
from mailpass.core.mime import compose
from mailpass.core.outgoing import Address, OutgoingMessage

MESSAGE_ID = "<k3j4h5g6.1700000000@mailpass.example.com>"
SENT_AT = datetime(2024, 5, 17, 9, 30, 12, tzinfo=UTC)
BARE_CR_OR_LF = re.compile(rb"\r(?!\n)|(?<!\r)\n")
ENCODED_WORD = re.compile(rb"=\?([^?]*)\?([^?]*)\?([^?]*)\?=")


def make_message(**changes: Any) -> OutgoingMessage:
    base = OutgoingMessage(
        message_id=MESSAGE_ID,
        sender=Address("orders@shop.example.com", "Example Shop"),
        to=(Address("jane@example.org", "Jane Doe"),),
        subject="Your order has shipped",
        date=SENT_AT,
        html="<p>Hello Jane</p>\n",
        text="Hello Jane\n",
    )
    return dataclasses.replace(base, **changes)


def compose_and_parse(message: OutgoingMessage) -> tuple[bytes, EmailMessage]:
    """Compose, check what every message must satisfy on the wire, and parse it back."""
    data = compose(message)
    assert BARE_CR_OR_LF.search(data) is None, "every line must end in CRLF"
    assert data.endswith(b"\r\n")
    head, separator, _ = data.partition(b"\r\n\r\n")
    assert separator, "the header section must end with an empty line"
    assert head.isascii()
    for line in data.split(b"\r\n"):
        assert len(line) < 998
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    assert parsed.defects == []
    return data, parsed


def header_lines(data: bytes, name: str) -> list[bytes]:
    """The raw (folded) lines of one header field."""
    head = data.partition(b"\r\n\r\n")[0]
    match = re.search(rb"^" + name.encode() + rb": .*?(?=\r\n\S|\Z)", head, re.M | re.S)
    assert match is not None, f"no {name} header"
    return match.group().split(b"\r\n")


def assert_encoded_words_stand_alone(lines: list[bytes]) -> None:
    """RFC 2047: each encoded-word is at most 75 characters and decodes on its own."""
    for line in lines:
        for charset, encoding, payload in ENCODED_WORD.findall(line):
            assert len(b"=?%s?%s?%s?=" % (charset, encoding, payload)) <= 75
            assert (charset.lower(), encoding.lower()) == (b"utf-8", b"b")
            base64.b64decode(payload, validate=True).decode("utf-8")  # no split characters


def body_text(part: EmailMessage) -> str:
    content = part.get_content()
    assert isinstance(content, str)
    return content.replace("\r\n", "\n")


def test_every_field_lands_in_its_header() -> None:
    message = make_message(
        to=(Address("jane@example.org", "Jane Doe"), Address("bob@example.net")),
        cc=(Address("carol@example.com", "Carol"),),
        reply_to=(Address("support@shop.example.com", "Shop Support"),),
        extra_headers=(("List-Unsubscribe", "<https://shop.example.com/u/abc>"),),
    )
    _, parsed = compose_and_parse(message)

    assert parsed["From"].addresses[0].display_name == "Example Shop"
    assert parsed["From"].addresses[0].addr_spec == "orders@shop.example.com"
    assert [(a.display_name, a.addr_spec) for a in parsed["To"].addresses] == [
        ("Jane Doe", "jane@example.org"),
        ("", "bob@example.net"),
    ]
    assert [(a.display_name, a.addr_spec) for a in parsed["Cc"].addresses] == [
        ("Carol", "carol@example.com")
    ]
    assert [(a.display_name, a.addr_spec) for a in parsed["Reply-To"].addresses] == [
        ("Shop Support", "support@shop.example.com")
    ]
    assert parsed["Subject"] == "Your order has shipped"
    assert parsed["Date"].datetime == SENT_AT
    assert parsed["MIME-Version"] == "1.0"
    assert parsed["List-Unsubscribe"] == "<https://shop.example.com/u/abc>"


def test_message_id_is_written_exactly() -> None:
    data, parsed = compose_and_parse(make_message())
    assert b"\r\nMessage-ID: " + MESSAGE_ID.encode() + b"\r\n" in data
    assert parsed["Message-ID"] == MESSAGE_ID


def test_cc_and_reply_to_are_left_out_when_empty() -> None:
    data, parsed = compose_and_parse(make_message())
    assert "Cc" not in parsed
    assert "Reply-To" not in parsed
    assert b"\r\nCc:" not in data
    assert b"\r\nReply-To:" not in data


def test_bcc_exists_only_in_the_envelope() -> None:
    message = make_message(
        bcc=(Address("hidden@secret.example", "Hidden Person"), Address("jane@example.org"))
    )
    data, parsed = compose_and_parse(message)

    assert "hidden@secret.example" in message.envelope_recipients
    assert re.search(rb"^bcc:", data, re.IGNORECASE | re.MULTILINE) is None
    assert b"hidden" not in data.lower()
    assert b"secret.example" not in data
    assert "Bcc" not in parsed


def test_bcc_only_message_has_an_empty_group_as_to() -> None:
    message = make_message(to=(), bcc=(Address("hidden@secret.example"),))
    data, parsed = compose_and_parse(message)
    assert b"\r\nTo: undisclosed-recipients:;\r\n" in data
    assert parsed["To"].addresses == ()
    assert b"secret.example" not in data
    assert message.envelope_recipients == ["hidden@secret.example"]


@pytest.mark.parametrize(
    "subject",
    [
        "ご注文の商品を発送しました",
        "Your order 🎉 has shipped 🚚📦",
        "Ünïcödé and 日本語 and emoji 👩‍👩‍👧‍👦 together",
        "Literally =?utf-8?b?SGk=?= not an encoded-word",
        "tab\tand  double  spaces",
        "",
        " ".join(["shipping"] * 34),  # 305 characters of plain ASCII
        "x" * 2000,  # no whitespace at all: cannot be folded as text
        "お知らせ" * 75,  # 300 Japanese characters
        "🎉" * 200,  # 4-byte characters on every encoded-word boundary
    ],
)
def test_subject_round_trips_and_folds(subject: str) -> None:
    data, parsed = compose_and_parse(make_message(subject=subject))
    assert parsed["Subject"] == subject
    lines = header_lines(data, "Subject")
    assert all(len(line) <= 78 for line in lines)
    assert_encoded_words_stand_alone(lines)


def test_long_ascii_subject_stays_readable_text() -> None:
    subject = " ".join(["shipping"] * 34)
    data, _ = compose_and_parse(make_message(subject=subject))
    lines = header_lines(data, "Subject")
    assert len(lines) > 1
    assert b"=?" not in b"".join(lines)
    assert b"".join(lines) == b"Subject: " + subject.encode()  # unfolding restores it


@pytest.mark.parametrize(
    "name",
    [
        "Jane Doe",
        "Doe, Jane",
        'He said "hi" \\o/',
        "Sales (EU); Team <main>",
        "Dr. Who",
        "山田 太郎",
        "🎉 Party Shop",
        "Zoë Ünïcödé",
        "=?utf-8?b?SGk=?=",
    ],
)
def test_display_names_round_trip(name: str) -> None:
    message = make_message(
        sender=Address("orders@shop.example.com", name),
        to=(Address("jane@example.org", name), Address("bob@example.net", name)),
        cc=(Address("carol@example.com", name),),
        reply_to=(Address("support@shop.example.com", name),),
    )
    _, parsed = compose_and_parse(message)
    for field, expected in [
        ("From", ["orders@shop.example.com"]),
        ("To", ["jane@example.org", "bob@example.net"]),
        ("Cc", ["carol@example.com"]),
        ("Reply-To", ["support@shop.example.com"]),
    ]:
        addresses = parsed[field].addresses
        assert [a.addr_spec for a in addresses] == expected
        assert [a.display_name for a in addresses] == [name] * len(expected)


@pytest.mark.parametrize(
    "name",
    ["株式会社サンプル商店 カスタマーサポートセンター 東京本社", "🎉" * 40, "Zoë " * 30],
)
def test_long_non_ascii_names_fold_into_encoded_words(name: str) -> None:
    data, parsed = compose_and_parse(make_message(to=(Address("jane@example.org", name),)))
    lines = header_lines(data, "To")
    assert len(lines) > 1
    assert all(len(line) <= 76 for line in lines)  # RFC 2047's limit with encoded-words
    assert_encoded_words_stand_alone(lines)
    assert parsed["To"].addresses[0].addr_spec == "jane@example.org"
    # RFC 2047 drops the whitespace between adjacent encoded-words. Python 3.11's address
    # parser keeps it (CPython gh-128110), so decode the phrase with the RFC 2047 decoder.
    unfolded = b"".join(lines).decode("ascii").removeprefix("To: ")
    phrase = unfolded.removesuffix("<jane@example.org>").strip()
    assert str(make_header(decode_header(phrase))) == name


def test_address_lists_fold_between_addresses() -> None:
    recipients = tuple(Address(f"recipient{index}@example.com") for index in range(40))
    data, parsed = compose_and_parse(make_message(to=recipients))
    lines = header_lines(data, "To")
    assert len(lines) > 1
    assert all(line.endswith(b",") for line in lines[:-1])
    assert all(len(line) <= 78 for line in lines)
    assert [a.addr_spec for a in parsed["To"].addresses] == [r.email for r in recipients]


def test_idn_domain_reaches_the_header_as_punycode() -> None:
    recipient = parse_mailbox("Jörg Müller <joerg@bücher.example>")
    _, parsed = compose_and_parse(make_message(to=(recipient,)))
    assert parsed["To"].addresses[0].addr_spec == "joerg@xn--bcher-kva.example"
    assert parsed["To"].addresses[0].display_name == "Jörg Müller"


BODIES = {
    "ascii": "Hello Jane,\n\nYour order has shipped.\n",
    "japanese": "山田様\n\nご注文ありがとうございます。🎉\n",
    "long line": "word " * 1000 + "\nend\n",
    "long line without spaces": "x" * 5000,
    "long non-ascii line": "é" * 3000,
    "dots": ".\n.leading dot\n..two dots\nmiddle . dot\n.",
    "qp-sensitive": "a=b =3D ==\ntrailing space \ntrailing tab\t\n\x00nul\n",
    "from line": "From the desk of Jane\n>quoted\n",
    "boundary-like": "--=_mailpass_0123\n--\n",
    "no final newline": "Hello",
    "blank lines": "\n\n\n",
}


@pytest.mark.parametrize("content", BODIES.values(), ids=BODIES.keys())
def test_alternative_bodies_round_trip_exactly(content: str) -> None:
    html = f"<p>{content}</p>"
    _, parsed = compose_and_parse(make_message(text=content, html=html))
    assert parsed.get_content_type() == "multipart/alternative"
    text_part, html_part = parsed.iter_parts()
    assert text_part.get_content_type() == "text/plain"
    assert html_part.get_content_type() == "text/html"
    assert isinstance(text_part, EmailMessage)
    assert isinstance(html_part, EmailMessage)
    assert body_text(text_part) == content
    assert body_text(html_part) == html


@pytest.mark.parametrize("content", BODIES.values(), ids=BODIES.keys())
@pytest.mark.parametrize("kind", ["text", "html"])
def test_single_body_round_trips(kind: str, content: str) -> None:
    message = make_message(**{"text": None, "html": None, kind: content})
    _, parsed = compose_and_parse(message)
    assert not parsed.is_multipart()
    assert parsed.get_content_type() == ("text/plain" if kind == "text" else "text/html")
    assert parsed.get_content_charset() == "utf-8"
    # A lone part ends the message, and SMTP data always ends with a line break.
    expected = content if content.endswith("\n") else content + "\n"
    assert body_text(parsed) == expected


@pytest.mark.parametrize(
    ("content", "encoding"),
    [
        ("Hello\n.\nbye\n", "7bit"),
        ("x" * 990, "7bit"),
        ("x" * 991, "quoted-printable"),
        ("caf\u00e9\n", "quoted-printable"),
        ("nul\x00\n", "quoted-printable"),
    ],
)
def test_transfer_encoding_is_7bit_only_when_safe(content: str, encoding: str) -> None:
    _, parsed = compose_and_parse(make_message(text=content, html=None))
    assert parsed["Content-Transfer-Encoding"] == encoding


def test_quoted_printable_lines_stay_within_76_characters() -> None:
    data, _ = compose_and_parse(make_message(text="x" * 5000, html="é" * 5000))
    body = data.partition(b"\r\n\r\n")[2]
    assert body.count(b"Content-Transfer-Encoding: quoted-printable") == 2
    assert all(len(line) <= 76 for line in body.split(b"\r\n"))


@pytest.mark.parametrize(
    "content",
    ["one\ntwo\nthree", "one\r\ntwo\r\nthree", "one\rtwo\rthree", "one\r\ntwo\nthree"],
)
def test_line_endings_are_normalised_to_crlf(content: str) -> None:
    data, parsed = compose_and_parse(make_message(text=content, html=content))
    assert b"one\r\ntwo\r\nthree" in data
    text_part, html_part = parsed.iter_parts()
    assert isinstance(text_part, EmailMessage)
    assert isinstance(html_part, EmailMessage)
    assert body_text(text_part) == body_text(html_part) == "one\ntwo\nthree"


def test_boundary_never_occurs_in_a_body(monkeypatch: pytest.MonkeyPatch) -> None:
    seeds: list[str] = []
    digests = iter(["c0111de5" * 4, "0f7e54" * 5 + "00"])

    def scripted(seed: str) -> str:
        seeds.append(seed)
        return next(digests)

    monkeypatch.setattr(mime, "boundary_digest", scripted)
    collides, fresh = "=_mailpass_" + "c0111de5" * 4, "=_mailpass_" + "0f7e54" * 5 + "00"
    text = f"This line mentions {collides} on purpose.\n"
    data, parsed = compose_and_parse(make_message(text=text))
    assert parsed.get_boundary() == fresh
    assert seeds == [f"0:{MESSAGE_ID}", f"1:{MESSAGE_ID}"]
    text_part = next(parsed.iter_parts())
    assert isinstance(text_part, EmailMessage)
    assert body_text(text_part) == text
    assert data.count(fresh.encode()) == 4  # the header, two delimiters, the close


def test_boundaries_differ_between_messages() -> None:
    first = email.message_from_bytes(compose(make_message()), policy=email.policy.default)
    second = email.message_from_bytes(
        compose(make_message(message_id="<other.1700000000@mailpass.example.com>")),
        policy=email.policy.default,
    )
    assert first.get_boundary() != second.get_boundary()


def test_the_same_message_composes_to_the_same_bytes() -> None:
    # Nothing random goes in: composed again when it is sent, a message is the mail accepted.
    message = make_message(subject="Grüße " * 30, cc=(Address("cc@example.org"),))
    assert compose(message) == compose(dataclasses.replace(message))
    assert compose(make_message(html=None)) == compose(make_message(html=None))


def test_non_ascii_extra_header_values_are_encoded() -> None:
    message = make_message(extra_headers=(("X-Campaign", "夏のセール 🎉"), ("X-Plain", "a b")))
    data, parsed = compose_and_parse(message)
    assert parsed["X-Campaign"] == "夏のセール 🎉"
    assert parsed["X-Plain"] == "a b"
    assert data.index(b"X-Campaign:") < data.index(b"X-Plain:")


@pytest.mark.parametrize(
    "changes",
    [
        {"subject": "Hi\r\nBcc: victim@example.com"},
        {"subject": "Hi\nthere"},
        {"sender": Address("orders@shop.example.com", "Shop\r\nBcc: victim@example.com")},
        {"to": (Address("jane@example.org\r\nBcc: victim@example.com"),)},
        {"cc": (Address("carol@example.com", "Carol\x00"),)},
        {"message_id": "<a@b>\r\nBcc: victim@example.com"},
        {"extra_headers": (("X-Tag", "a\r\nBcc: victim@example.com"),)},
        {"extra_headers": (("X-Tag\r\nBcc", "victim@example.com"),)},
        {"extra_headers": (("X Tag", "space in name"),)},
        {"extra_headers": (("Bcc", "victim@example.com"),)},
        {"extra_headers": (("subject", "a second subject"),)},
    ],
    ids=lambda changes: repr(changes)[:40],
)
def test_header_injection_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - any ValueError; the message varies
        compose(make_message(**changes))


def test_each_message_has_its_own_date_to_the_second() -> None:
    first = datetime(2026, 12, 1, 13, 51, 44, 900_000, tzinfo=UTC)
    dates = [first, first, first.replace(second=45, microsecond=1), first.replace(day=2)]
    headers = [compose_and_parse(make_message(date=date))[1]["Date"].datetime for date in dates]
    assert headers == [date.replace(microsecond=0) for date in dates]
