"""The OpenAPI document, field by field, against the models the routes use: the pydantic request
models (``messages.request``) and the typed results the answers are rendered from
(``messages.results`` through ``api.wire``). A field added, removed or retyped on one side
fails here until the other follows."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

import jsonschema_rs
import orjson
import pytest
from pydantic import TypeAdapter

from mailpass.accounts.keys import ApiKey
from mailpass.api.openapi import schemas as openapi
from mailpass.api.wire import batch_answer, cancel_answer, send_answer, status_answer
from mailpass.core.events import attempt_data, read_data
from mailpass.core.statuses import EventType, MessageStatus
from mailpass.messages.request import BatchFields, MessageFields
from mailpass.messages.results import (
    AttachmentInfo,
    MessageEvent,
    MessageRecord,
    QueuedBatch,
    QueuedMessage,
    RefusedItem,
    ScheduledMessage,
    SentMessage,
)

SCHEMAS = {
    "SendRequest": openapi.SEND_REQUEST,
    "BatchMessage": openapi.BATCH_MESSAGE,
    "BatchRequest": openapi.BATCH_REQUEST,
    "SendResult": openapi.SEND_RESULT,
    "BatchResult": openapi.BATCH_RESULT,
    "Message": openapi.MESSAGE,
    "Event": openapi.EVENT,
    "MessageStatus": openapi.MESSAGE_STATUS,
    "CancelResult": openapi.CANCEL_RESULT,
}
# The wire name of a result's field, where it differs.
WIRE_NAMES = {"sender": "from", "ignored": "ignored_fields"}
NOW = datetime(2026, 12, 7, 9, 30, 5)


def json_types(schema: dict[str, Any], defs: dict[str, Any]) -> set[str]:
    """The JSON types a schema admits, through anyOf/oneOf, consts, enums and $refs."""
    if "$ref" in schema:
        return json_types(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    found: set[str] = set()
    kind = schema.get("type")
    if isinstance(kind, str):
        found.add(kind)
    elif isinstance(kind, list):
        found.update(kind)
    values = [schema["const"]] if "const" in schema else schema.get("enum", [])
    found.update(json_type_of(value) for value in values)
    for combined in ("anyOf", "oneOf"):
        for alternative in schema.get(combined, []):
            found |= json_types(alternative, defs)
    return found


def json_type_of(value: Any) -> str:
    return {
        str: "string",
        bool: "boolean",
        int: "integer",
        float: "number",
        type(None): "null",
        list: "array",
        dict: "object",
    }[type(value) if not isinstance(value, str) else str]


def pydantic_properties(model: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A model's (or dataclass's) JSON schema properties as pydantic makes them, and its defs."""
    schema = TypeAdapter(model).json_schema(mode="serialization")
    return schema["properties"], schema.get("$defs", {})


@pytest.mark.parametrize(
    ("model", "documented"),
    [
        (MessageFields, openapi.SEND_REQUEST),
        (MessageFields, openapi.BATCH_MESSAGE),
        (BatchFields, openapi.BATCH_REQUEST),
    ],
)
def test_each_request_field_takes_the_types_the_model_reads(model: Any, documented: dict) -> None:
    properties, defs = pydantic_properties(model)
    assert set(documented["properties"]) == set(properties)
    for name, schema in properties.items():
        expected = json_types(schema, defs)
        if name in openapi.SEND_REQUEST["required"]:
            # Required for every message (a batch item's default can't give them): the model
            # reads null as missing, and says so.
            expected.discard("null")
        assert json_types(documented["properties"][name], {}) == expected, name


# A message's accepted status and provider reply are told as its events (``queued``, ``sent``);
# an event's ``data`` is rendered as fields of the event.
NOT_ON_THE_WIRE = {"accepted_as", "provider_reply", "data"}
EVENT_DATA_FIELDS = {
    "smtp_reply",
    "refused",
    "reason",
    "attempt",
    "next_attempt_at",
    "scheduled_at",
    # reported by a provider's webhook (``intake``)
    "provider",
    "report",
    "recipient",
    "recipients",
    "bounce_type",
    "bounce_subtype",
    "dsn_status",
    "diagnostic_code",
    "classification",
    "feedback_type",
    "reported_at",
}


@pytest.mark.parametrize(
    ("result", "documented"),
    [
        (SentMessage, openapi.SEND_RESULT),
        (MessageRecord, openapi.MESSAGE),
        (MessageEvent, openapi.EVENT),
    ],
)
def test_each_answer_field_has_the_type_of_the_result_it_is_rendered_from(
    result: Any, documented: dict
) -> None:
    properties, defs = pydantic_properties(result)
    wire = {
        WIRE_NAMES.get(name, name): schema
        for name, schema in properties.items()
        if name not in NOT_ON_THE_WIRE
    }
    extra: set[str] = set()
    if result is SentMessage:
        # The answer says "sent" itself; a scheduled send's answer adds a ScheduledMessage's two.
        extra = {"status", "queue_id", "scheduled_at"}
    elif result is MessageEvent:
        extra = EVENT_DATA_FIELDS  # an event's data, each type's own (checked by rendering)
    assert set(documented["properties"]) == set(wire) | extra
    for name, schema in wire.items():
        assert json_types(documented["properties"][name], {}) == json_types(schema, defs), name


def test_documented_statuses_and_event_types_are_the_enums() -> None:
    assert openapi.MESSAGE["properties"]["status"]["enum"] == list(MessageStatus)
    assert openapi.EVENT["properties"]["event_type"]["enum"] == list(EventType)
    assert openapi.SEND_RESULT["properties"]["status"]["enum"] == [
        MessageStatus.SENT,
        MessageStatus.QUEUED,
    ]
    assert openapi.CANCEL_RESULT["properties"]["status"] == {"const": MessageStatus.CANCELLED}


def record(**changes: Any) -> MessageRecord:
    values: dict[str, Any] = {
        "message_id": "<a.1@example.com>",
        "queue_id": 7,
        "from_email": "shop@example.com",
        "from_name": None,
        "to_email": "user@example.com",
        "cc": [],
        "bcc": ["audit@example.com"],
        "reply_to": None,
        "subject": "Hi",
        "status": MessageStatus.SENT,
        "error_message": None,
        "attempts": 1,
        "next_attempt_at": None,
        "held_reason": None,
        "tags": ["order"],
        "metadata": {"order_id": "1"},
        "test": False,
        "sent_at": NOW,
        "created_at": NOW,
        "first_opened_at": None,
        "first_clicked_at": NOW,
        "attachments": [],
        "scheduled_at": None,
    }
    return MessageRecord(**{**values, **changes})


EVENT = MessageEvent(
    EventType.CLICK, NOW, "203.0.113.9", "Mozilla/5.0", "https://x.test/", False, None
)
# Every kind of event MailPass records, as the store gives them back.
STORY = [
    MessageEvent(EventType.SCHEDULED, NOW, data={"scheduled_at": NOW}),
    MessageEvent(EventType.QUEUED, NOW),
    MessageEvent(
        EventType.DEFERRED,
        NOW,
        data=read_data(attempt_data("451 4.3.0 Try again later", 1, NOW)),
    ),
    MessageEvent(EventType.FAILED, NOW, data=read_data(attempt_data(None, 2))),
    MessageEvent(
        EventType.SENT,
        NOW,
        data={"attempt": 2, "smtp_reply": "250 2.0.0 Ok", "refused": "x@example.com: 550"},
    ),
    MessageEvent(EventType.CANCELLED, NOW),
    MessageEvent(EventType.OPEN, NOW, "203.0.113.9", "Mozilla/5.0", None, True, "proxy"),
    EVENT,
]


@pytest.mark.parametrize(
    ("schema", "answer"),
    [
        ("SendResult", send_answer(SentMessage("<a.1@example.com>", "user@example.com", "s@x.io"))),
        (
            "SendResult",
            send_answer(
                SentMessage("<a.1@example.com>", "user@example.com", "s@x.io", ("atachments",))
            ),
        ),
        (
            "BatchResult",
            batch_answer(
                QueuedBatch(
                    [
                        QueuedMessage("a@example.com", 101, "<a.1@example.com>"),
                        RefusedItem(None, "to: is required", [{"field": "to", "message": "x"}]),
                    ],
                    queued=1,
                )
            ),
        ),
        (
            "BatchResult",
            batch_answer(
                QueuedBatch(
                    [QueuedMessage("a@example.com", 101, "<a.1@example.com>")],
                    queued=1,
                    ignored=("priority", "messages.0.atachments"),
                )
            ),
        ),
        (
            "BatchResult",
            batch_answer(
                QueuedBatch(
                    [
                        QueuedMessage("a@example.com", 101, "<a.1@example.com>", ("b@x.io",)),
                        RefusedItem(
                            "gone@example.com",
                            "the recipient is on the suppression list: gone@example.com",
                            [{"field": "to", "email": "gone@example.com", "reason": "manual"}],
                            "RECIPIENT_SUPPRESSED",
                        ),
                    ],
                    queued=1,
                )
            ),
        ),
        ("MessageStatus", status_answer(record(), [EVENT])),
        ("MessageStatus", status_answer(record(), STORY)),
        (
            "SendResult",
            send_answer(
                SentMessage("<a.1@example.com>", "user@example.com", "s@x.io", (), ("cc@x.io",))
            ),
        ),
        (
            "SendResult",
            send_answer(
                ScheduledMessage("<a.1@example.com>", 7, "user@example.com", "s@x.io", NOW)
            ),
        ),
        (
            "CancelResult",
            cancel_answer(record(status=MessageStatus.QUEUED), MessageStatus.CANCELLED),
        ),
        (
            "MessageStatus",
            status_answer(
                record(
                    attachments=[
                        AttachmentInfo("invoice.pdf", "application/pdf", 10240, None),
                        AttachmentInfo("logo.png", "image/png", 512, "logo@shop"),
                    ],
                    scheduled_at=NOW,
                ),
                [],
            ),
        ),
        ("MessageStatus", status_answer(record(status=MessageStatus.QUEUED, sent_at=None), [])),
        (
            "MessageStatus",
            status_answer(
                record(
                    status=MessageStatus.QUEUED,
                    sent_at=None,
                    next_attempt_at=NOW,
                    held_reason="provider 'relay' is down until 2026-01-30T12:00:30Z",
                ),
                [],
            ),
        ),
    ],
)
def test_rendered_answers_are_valid_against_the_document(schema: str, answer: Any) -> None:
    on_the_wire = orjson.loads(orjson.dumps(answer))
    jsonschema_rs.validate({**SCHEMAS[schema], "components": {"schemas": SCHEMAS}}, on_the_wire)
    # Every documented field is rendered, and nothing else; ignored_fields only when some were,
    # a send's queue_id and scheduled_at only when it was scheduled, suppressed only when some
    # recipients were left out.
    top = SCHEMAS[schema]
    optional = {"ignored_fields", "queue_id", "scheduled_at", "suppressed"} - set(
        top.get("required", ())
    )
    assert set(top["properties"]) - optional <= set(answer) <= set(top["properties"])


def test_a_wrong_field_type_is_caught() -> None:
    """The checks above can fail: a renamed or retyped field is told apart."""

    @dataclasses.dataclass
    class Renamed:
        message_id: str
        queue: int  # not queue_id

    properties, _defs = pydantic_properties(Renamed)
    assert set(properties) != set(openapi.MESSAGE["properties"])
    assert json_types({"type": "integer"}, {}) != json_types(
        openapi.MESSAGE["properties"]["message_id"], {}
    )
    with pytest.raises(jsonschema_rs.ValidationError):
        jsonschema_rs.validate(
            openapi.MESSAGE_STATUS | {"components": {"schemas": SCHEMAS}},
            {"message": {}, "events": []},
        )


def test_the_key_record_is_not_on_the_wire() -> None:
    """The API key a status lookup found is for admitting the request, never rendered."""
    assert "key" not in openapi.MESSAGE_STATUS["properties"]
    assert not any(field.type is ApiKey for field in dataclasses.fields(MessageRecord))
