"""Message-IDs: the seed's ``<random.unixtime@domain>``, and ids made later sort after earlier
ones (so new rows share the pages of the message_id index)."""

from __future__ import annotations

import re
import time

import pytest

from mailpass.core.ids import new_message_id, normalize_message_id, provider_message_id


def test_the_shape_is_the_seeds_random_dot_unixtime_at_domain() -> None:
    before = int(time.time())
    message_id = new_message_id("shop.example.com")
    match = re.fullmatch(r"<([0-9a-f]{31})\.(\d+)@shop\.example\.com>", message_id)
    assert match is not None, message_id
    assert before <= int(match.group(2)) <= time.time()


def test_ids_made_later_sort_after_earlier_ones() -> None:
    made = []
    for _ in range(5):
        made.append(new_message_id("example.com"))
        time.sleep(0.002)  # the order is the millisecond's; within one, the random part decides
    assert made == sorted(made)


def test_ids_made_in_the_same_millisecond_still_differ() -> None:
    made = {new_message_id("example.com") for _ in range(10_000)}
    assert len(made) == 10_000


def test_an_id_is_accepted_with_or_without_brackets_and_encoded() -> None:
    message_id = new_message_id("example.com")
    bare = message_id.strip("<>")
    assert normalize_message_id(bare) == message_id
    assert normalize_message_id(bare.replace("@", "%40")) == message_id


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("250 Ok 0100018c5a1b2c3d-0a1b2c3d-000000", "0100018c5a1b2c3d-0a1b2c3d-000000"),  # SES
        ("250 Ok: queued as Vh5sNtN7Qdm3Xa0WqXUzfA", "Vh5sNtN7Qdm3Xa0WqXUzfA"),  # SendGrid
        ("250 2.0.0 Ok: queued as 4F2", "4F2"),  # Postfix
        ("250 Great success", None),  # Mailgun: its events carry the Message-ID
        ("250 2.0.0 OK  1700000000 x1si.123 - gsmtp", None),
        ("", None),
        (None, None),
    ],
)
def test_the_providers_own_id_is_read_from_its_reply(reply, expected):
    assert provider_message_id(reply) == expected
