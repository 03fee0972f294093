"""Reading mailed reports (``intake.dsn``) and return paths (``intake.verp``), on their own."""

from __future__ import annotations

from intake_helpers import arf, dsn

from mailpass.core.statuses import EventType
from mailpass.intake.dsn import read_report
from mailpass.intake.verp import ReturnPaths

SECRET = "a-test-instance-secret-of-some-length"


def test_a_return_path_names_its_message_and_only_ours_verify():
    paths = ReturnPaths(SECRET, "Bounces.Shop.Example.")
    address = paths.for_message(123_456_789)
    assert address is not None
    local, domain = address.split("@")
    assert domain == "bounces.shop.example"
    assert len(local) <= 64  # RFC 5321's limit on a local part
    assert paths.message_of(address) == 123_456_789
    assert paths.message_of(address.upper()) == 123_456_789  # local parts travel in any case
    assert paths.message_of(address.replace("bounces.shop", "other.shop")) is None
    tampered = local[:-1] + ("a" if local[-1] != "a" else "b") + "@" + domain
    assert paths.message_of(tampered) is None
    assert ReturnPaths("another secret", "bounces.shop.example").message_of(address) is None
    assert paths.message_of(f"postmaster@{domain}") is None
    assert paths.envelope_sender("ses", 1, "me@shop.example") == "me@shop.example"
    assert paths.envelope_sender("smtp", 1, "me@shop.example").startswith("bounces+1-")
    unset = ReturnPaths(SECRET, None)
    assert unset.envelope_sender("smtp", 1, "me@shop.example") == "me@shop.example"


def test_each_recipient_of_a_dsn_is_an_event():
    report = dsn("r@x", "<m@shop.example>", "a@example.com", action="failed", status="5.1.1")
    # A second recipient: given up after temporary failures (a soft bounce).
    second = (
        b"Final-Recipient: rfc822; b@example.com\r\nAction: failed\r\nStatus: 4.4.7\r\n"
        b"Diagnostic-Code: X-Postfix; delivery temporarily suspended\r\n\r\n"
    )
    report = report.replace(
        b"--B1\r\nContent-Type: text/rfc822", second + b"--B1\r\nContent-Type: text/rfc822"
    )
    read = read_report(report)
    assert read is not None
    assert read.message_id == "<m@shop.example>"
    assert [(e.event_type, e.recipient, e.data.get("bounce_type")) for e in read.events] == [
        (EventType.BOUNCED, "a@example.com", "hard"),
        (EventType.BOUNCED, "b@example.com", "soft"),
    ]


def test_what_is_no_report_reads_as_none():
    assert read_report(b"Subject: Out of office\r\n\r\nBack Monday.\r\n") is None
    assert (
        read_report(
            b"MIME-Version: 1.0\r\nContent-Type: multipart/report;"
            b' report-type=disposition-notification; boundary="X"\r\n\r\n'
            b"--X\r\nContent-Type: text/plain\r\n\r\nread\r\n--X--\r\n"
        )
        is None
    )
    assert read_report(b"\x00\xff garbage") is None


def test_a_complaint_says_whose_only_by_original_rcpt_to():
    named = read_report(arf("<m@shop.example>", "Angry@Example.com"))
    redacted = read_report(arf("<m@shop.example>", None))
    assert named is not None
    assert redacted is not None
    assert [(e.event_type, e.recipient) for e in named.events] == [
        (EventType.COMPLAINED, "Angry@Example.com")
    ]
    assert redacted.events[0].recipient is None
    assert redacted.message_id == "<m@shop.example>"
