"""``parse_batch``: a batch whose items all parse gets them as fields in one pass; any problem
and the items stay raw, so that each bad one can fail alone."""

from __future__ import annotations

import json

import pytest

from mailpass.errors import ValidationError
from mailpass.messages.request import MessageFields, parse_batch, validate_batch_item

GOOD = {"to": "a@example.com", "subject": "A", "text": "a"}


def test_items_that_all_parse_come_as_fields() -> None:
    batch = parse_batch(json.dumps({"messages": [GOOD, GOOD], "from_name": "Shop"}).encode())
    assert all(isinstance(item, MessageFields) for item in batch.messages)
    assert batch.from_name == "Shop"


def test_one_item_that_does_not_parse_leaves_every_item_raw() -> None:
    bad = {**GOOD, "subject": ["not", "a", "string"]}
    batch = parse_batch(json.dumps({"messages": [GOOD, bad, 7]}).encode())
    assert batch.messages == [GOOD, bad, 7]
    assert validate_batch_item(batch.messages[0], {}, 0).subject == "A"
    with pytest.raises(ValidationError) as refused:
        validate_batch_item(batch.messages[1], {}, 1)
    assert refused.value.details[0]["field"] == "messages.1.subject"


def test_defaults_fill_what_a_parsed_item_leaves_unset() -> None:
    batch = parse_batch(
        json.dumps(
            {"messages": [GOOD, {**GOOD, "tags": ["own"]}], "tags": ["batch"], "from_name": "X"}
        ).encode()
    )
    defaults = batch.item_defaults()
    first, second = (
        validate_batch_item(item, defaults, i) for i, item in enumerate(batch.messages)
    )
    assert (first.tags, second.tags) == (("batch",), ("own",))
    assert first.from_name == second.from_name == "X"


@pytest.mark.parametrize("body", [b"", b"not json", b"[]", b'{"messages": "no"}'])
def test_a_body_that_is_no_batch_is_the_same_error_as_before(body: bytes) -> None:
    with pytest.raises(ValidationError):
        parse_batch(body)
