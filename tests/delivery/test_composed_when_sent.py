"""Mail stored as its columns is composed into the very bytes it had, or would have had, when it
was accepted: by the worker for queued mail, on demand for mail sent at once; mail whose
headers say more than the columns is stored whole."""

from __future__ import annotations

from datetime import UTC

import pytest
import sqlalchemy as sa

from mailpass.accounts.keys import ApiKey
from mailpass.clock import utcnow
from mailpass.core.addresses import parse_mailbox
from mailpass.core.mime import compose
from mailpass.core.outgoing import Address, OutgoingMessage
from mailpass.core.stored import kept_as_columns, mail_of, outgoing_from_columns
from mailpass.messages.request import MessageFields, validate_message
from mailpass.messages.service import message_row
from mailpass.storage.tables import message_contents, messages

SENDER = {"from_email": "orders@shop.example.com", "from_name": "Shop"}
# Stored as columns: nothing in their headers that the columns do not hold.
AS_COLUMNS = [
    {"to": "plain@example.com", "subject": "Plain", "html": "<p>Hi</p>", "text": "Hi\n"},
    {
        "to": ["one@example.com", "two@example.com"],
        "cc": ["cc1@example.com", "cc2@example.com"],
        "bcc": "hidden@example.com",
        "reply_to": ["r1@example.com", "r2@example.com"],
        "subject": "Grüße aus Köln, " * 8 + "🎉",  # encoded-words, folded
        "from_name": "Café Ünïcode, Ltd.",
        "text": ("Zeile mit Umlauten äöü " * 60 + "\n") * 3,  # quoted-printable, long lines
    },
    {
        "to": "html-only@bücher.example",  # an IDN domain: stored in its ASCII form
        "subject": "A subject long enough to be folded at whitespace, " * 3,
        "html": "<p>" + "x" * 2000 + "</p>\r\nline two\r",
    },
]
# Stored whole: a display name in To or Cc, or tracked html.
WHOLE = [
    {"to": "Jane Doe <jane@example.com>", "subject": "Named", "text": "hello"},
    {"to": "x@example.com", "cc": ['"Doe, J." <cc@example.com>'], "subject": "Cc", "text": "c"},
    {
        "to": "tracked@example.com",
        "subject": "Tracked",
        "html": '<p><a href="https://shop.example.com/o/1">Your order</a></p>',
        "track_opens": True,
        "track_clicks": True,
    },
]


def as_accepted(item: dict[str, object], message_id: str, created_at) -> OutgoingMessage:  # type: ignore[no-untyped-def]
    """The message as the API accepted it, from the request itself."""

    def mailboxes(field: str) -> tuple[Address, ...]:
        value = item.get(field) or []
        return tuple(parse_mailbox(raw) for raw in ([value] if isinstance(value, str) else value))

    return OutgoingMessage(
        message_id=message_id,
        sender=Address(SENDER["from_email"], str(item.get("from_name", SENDER["from_name"]))),
        to=mailboxes("to"),
        subject=str(item["subject"]),
        date=created_at.replace(tzinfo=UTC),
        html=item.get("html"),  # type: ignore[arg-type]
        text=item.get("text"),  # type: ignore[arg-type]
        cc=mailboxes("cc"),
        bcc=mailboxes("bcc"),
        reply_to=mailboxes("reply_to"),
    )


async def rows_by_message_id(app_client):  # type: ignore[no-untyped-def]
    async with app_client.app.state.services.database.read() as connection:
        rows = (
            (
                await connection.execute(
                    sa.select(messages, message_contents.c.raw).outerjoin(message_contents)
                )
            )
            .mappings()
            .all()
        )
    return {row["message_id"]: row for row in rows}


async def test_mail_kept_as_columns_is_sent_as_it_was_accepted(
    fast_retries, make_account, make_smtp_sink, queue_batch, drain, app_client
):
    # The sink refuses the first three attempts, so some of the mail is sent by a retry.
    sink = await make_smtp_sink(data_replies=["451 4.3.0 Try again later"] * 3)
    account = await make_account(sink=sink)
    data = await queue_batch(account, AS_COLUMNS + WHOLE, **SENDER)
    assert data["queued"] == len(AS_COLUMNS) + len(WHOLE), data
    answers = data["messages"]
    rows = await rows_by_message_id(app_client)
    for answer in answers[: len(AS_COLUMNS)]:
        assert rows[answer["message_id"]]["raw"] is None
    stored_whole = {}
    for answer in answers[len(AS_COLUMNS) :]:
        stored_whole[answer["message_id"]] = rows[answer["message_id"]]["raw"]
        assert stored_whole[answer["message_id"]]

    assert await drain() == 0
    sent = {received.message["Message-ID"]: received for received in sink.messages}
    assert len(sent) == len(answers)
    for item, answer in zip(AS_COLUMNS, answers, strict=False):
        message_id = answer["message_id"]
        row = (await rows_by_message_id(app_client))[message_id]
        assert (row["status"], row["attempts"]) in {("sent", 1), ("sent", 2)}
        expected = as_accepted(item, message_id, row["created_at"])
        assert sent[message_id].data == compose(expected), item["subject"]
        assert sent[message_id].message["Message-ID"] == message_id
    for message_id, raw in stored_whole.items():
        assert sent[message_id].data == raw
    assert b"Jane Doe <jane@example.com>" in sent[answers[len(AS_COLUMNS)]["message_id"]].data
    attempts = [row["attempts"] for row in (await rows_by_message_id(app_client)).values()]
    assert 2 in attempts  # some of them were sent by a retry


async def test_mail_sent_at_once_keeps_its_bytes_only_when_its_columns_cannot_give_them_back(
    make_account, make_smtp_sink, app_client
):
    sink = await make_smtp_sink()
    account = await make_account(sink=sink)
    for item in AS_COLUMNS + WHOLE:
        answer = await app_client.post(
            "/api/v1/mail/send", json={**SENDER, **item}, headers=account.headers
        )
        assert answer.status_code == 200, answer.text
    rows = await rows_by_message_id(app_client)
    sent = {received.message["Message-ID"]: received.data for received in sink.messages}
    assert len(sent) == len(rows) == len(AS_COLUMNS + WHOLE)
    kept_whole = {message_id for message_id, row in rows.items() if row["raw"] is not None}
    assert len(kept_whole) == len(WHOLE)
    for message_id, row in rows.items():
        assert row["status"] == "sent"
        assert mail_of(row) == sent[message_id]
    (named_to,) = [m for m, data in sent.items() if b"Jane Doe <jane@example.com>" in data]
    assert named_to in kept_whole


@pytest.mark.parametrize(
    "item",
    AS_COLUMNS + WHOLE,
    ids=["plain", "lists-unicode-qp", "idn-html-only", "named-to", "named-cc", "tracked"],
)
def test_a_message_is_kept_as_columns_only_when_they_give_it_back(item) -> None:  # type: ignore[no-untyped-def]
    now = utcnow()
    message = as_accepted(item, "<a.1@shop.example.com>", now)
    if item.get("track_opens"):
        message.tracking_id = "t" * 22
    valid = validate_message(MessageFields.model_validate({**SENDER, **item}))
    key = ApiKey(1, 1, "k", "mp_", frozenset({"mail"}), False, now, None, None)
    columns = message_row(  # as /send-batch stores the message
        key=key, provider=None, outgoing=message, valid=valid, status="queued", now=now
    )
    kept = kept_as_columns(message, now.replace(tzinfo=UTC))
    assert kept == (item in AS_COLUMNS)
    if kept:
        assert compose(outgoing_from_columns(columns)) == compose(message)
    # A Date other than created_at's could not be given back either.
    later = now.replace(tzinfo=UTC, year=now.year + 1)
    assert not kept_as_columns(message, later)
