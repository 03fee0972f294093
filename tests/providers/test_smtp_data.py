"""What DATA carries: the line endings and dot-stuffing MailPass writes itself must be exactly
aiosmtplib's (the regexes they replace), for any bytes at all."""

from __future__ import annotations

import re

from aiosmtplib.protocol import normalize_message_line_endings
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mailpass.providers.smtp.client import as_transmitted, dot_stuffed

# aiosmtplib's own dot-stuffing (``SMTPProtocol.write_message_data``).
PERIOD_AT_LINE_START = re.compile(rb"(?m)^\.")

# Bytes rich in what matters: line breaks of every kind and periods.
messages = (
    st.lists(st.sampled_from([b"\r\n", b"\r", b"\n", b".", b"..", b"a", b"\x00", b" "])).map(
        b"".join
    )
    | st.binary()
)


@settings(max_examples=2000)
@given(data=messages)
@example(data=b"")
@example(data=b".")
@example(data=b".\r\n.\r\n")
@example(data=b"Subject: x\r\n\r\n..hidden\r\n.\r\nend")
@example(data=b"\r\r\n\n")
def test_as_transmitted_and_stuffed_are_aiosmtplibs(data: bytes) -> None:
    expected = normalize_message_line_endings(data)
    assert as_transmitted(data) == expected
    assert dot_stuffed(expected) == PERIOD_AT_LINE_START.sub(b"..", expected)


def test_a_composed_message_is_not_copied() -> None:
    composed = b"From: a@example.com\r\n\r\nbody\r\n"
    assert as_transmitted(composed) is composed
