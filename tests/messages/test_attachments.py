"""Attachments and inline images: through the real API to a real SMTP server, the mail parsed
with ``email.parser`` as a recipient would, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import email.policy
import json
import os
from email.message import EmailMessage
from email.parser import BytesParser

import httpx
import pytest
import sqlalchemy as sa

from mailpass import AttachmentInfo, Client
from mailpass.storage.tables import message_contents

SEND = "/api/v1/mail/send"
BATCH = "/api/v1/mail/send-batch"
ITEM = {"to": "user@example.com", "subject": "Your receipt", "text": "Thanks"}
PDF = b"%PDF-1.7\n" + os.urandom(40_000)  # not text: any byte may occur
PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(3_000)
GERMAN_NAME = "Rechnung März 2026 — Bestellnummer 1042, bitte aufbewahren.pdf"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def parsed(raw: bytes) -> EmailMessage:
    message = BytesParser(policy=email.policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    return message


def structure(part: EmailMessage) -> object:
    """The MIME tree as nested content types: ("multipart/mixed", [...])."""
    if part.is_multipart():
        return (part.get_content_type(), [structure(child) for child in part.iter_parts()])
    return part.get_content_type()


def files_of(mail: EmailMessage) -> dict[str, EmailMessage]:
    return {
        part.get_filename(): part
        for part in mail.walk()
        if not part.is_multipart() and part.get_content_disposition() is not None
    }


async def test_files_and_an_inline_image_arrive_whole(
    app_client, make_account, smtp_sink, database
):
    account = await make_account(sink=smtp_sink)
    answer = await app_client.post(
        SEND,
        json={
            **ITEM,
            "html": '<p>Thanks</p><img src="cid:logo@shop">',
            "attachments": [
                {"filename": GERMAN_NAME, "content": b64(PDF)},
                {"filename": "logo.png", "content": b64(PNG), "content_id": "<logo@shop>"},
                # Wrapped at 76 as most encoders write it; the type given, with a parameter.
                {
                    "filename": "orders.csv",
                    "content": base64.encodebytes(b"id,total\r\n1042,9.90\r\n").decode(),
                    "content_type": "text/csv; charset=utf-8",
                },
            ],
        },
        headers=account.headers,
    )
    assert answer.status_code == 200, answer.text
    assert "ignored_fields" not in answer.json()["data"]
    [received] = smtp_sink.messages
    mail = parsed(received.data)
    assert structure(mail) == (
        "multipart/mixed",
        [
            (
                "multipart/related",
                [("multipart/alternative", ["text/plain", "text/html"]), "image/png"],
            ),
            "application/pdf",
            "text/csv",
        ],
    )
    files = files_of(mail)
    assert files[GERMAN_NAME].get_payload(decode=True) == PDF
    assert files[GERMAN_NAME].get_content_disposition() == "attachment"
    assert files["logo.png"].get_payload(decode=True) == PNG
    assert files["logo.png"].get_content_disposition() == "inline"
    assert files["logo.png"]["Content-ID"] == "<logo@shop>"
    html = mail.get_body(("html",))
    assert html is not None
    assert "cid:logo@shop" in html.get_content()
    assert files["orders.csv"].get_payload(decode=True) == b"id,total\r\n1042,9.90\r\n"
    assert files["orders.csv"].get_param("charset") == "utf-8"
    # The non-ASCII name as RFC 2231 parameters, and every line within 76 characters.
    assert b"filename*0*=utf-8''Rechnung%20M%C3%A4rz" in received.data
    assert max(len(line) for line in received.data.split(b"\r\n")[8:]) <= 76

    status = await app_client.get(
        f"/api/v1/mail/status/{answer.json()['data']['message_id']}", headers=account.headers
    )
    assert status.json()["data"]["message"]["attachments"] == [
        {
            "filename": GERMAN_NAME,
            "content_type": "application/pdf",
            "size": len(PDF),
            "content_id": None,
        },
        {
            "filename": "logo.png",
            "content_type": "image/png",
            "size": len(PNG),
            "content_id": "logo@shop",
        },
        {
            "filename": "orders.csv",
            "content_type": "text/csv; charset=utf-8",
            "size": 21,
            "content_id": None,
        },
    ]
    # Stored once: the mail as sent, beside the message's row (no copy per attempt).
    async with database.read() as connection:
        raw = (await connection.execute(sa.select(message_contents.c.raw))).scalar_one()
    assert raw == received.data


async def test_the_structure_is_only_as_deep_as_needed(app_client, make_account, smtp_sink):
    account = await make_account(sink=smtp_sink)
    plain = {"filename": "a.txt", "content": b64(b"a")}
    inline = {"filename": "i.png", "content": b64(PNG), "content_id": "i"}
    cases = [
        ({**ITEM, "attachments": [plain]}, ("multipart/mixed", ["text/plain", "text/plain"])),
        (
            {**ITEM, "text": None, "html": "<img src=cid:i>", "attachments": [inline]},
            ("multipart/related", ["text/html", "image/png"]),
        ),
        (
            {**ITEM, "html": "<img src=cid:i>", "attachments": [inline]},
            (
                "multipart/related",
                [("multipart/alternative", ["text/plain", "text/html"]), "image/png"],
            ),
        ),
    ]
    for body, expected in cases:
        answer = await app_client.post(SEND, json=body, headers=account.headers)
        assert answer.status_code == 200, answer.text
        assert structure(parsed(smtp_sink.messages[-1].data)) == expected


async def test_the_content_type_is_guessed_from_the_name(app_client, make_account, smtp_sink):
    account = await make_account(sink=smtp_sink)
    names = {
        "report.pdf": "application/pdf",
        "photo.JPG": "image/jpeg",
        "table.csv": "text/csv",
        "notes": "application/octet-stream",
        "data.mailpass-unknown": "application/octet-stream",
        "forwarded.eml": "application/octet-stream",  # message/rfc822 cannot be base64
    }
    answer = await app_client.post(
        SEND,
        json={**ITEM, "attachments": [{"filename": n, "content": b64(b"x")} for n in names]},
        headers=account.headers,
    )
    assert answer.status_code == 200, answer.text
    files = files_of(parsed(smtp_sink.messages[0].data))
    assert {name: part.get_content_type() for name, part in files.items()} == names


async def test_a_batch_item_carries_its_files_through_the_queue(
    app_client, make_account, smtp_sink
):
    account = await make_account(sink=smtp_sink)
    answer = await app_client.post(
        BATCH,
        json={
            "messages": [
                {
                    **ITEM,
                    "to": "a@example.com",
                    "attachments": [{"filename": "a.pdf", "content": b64(PDF)}],
                },
                {**ITEM, "to": "b@example.com"},
                {
                    **ITEM,
                    "to": "c@example.com",
                    "attachments": [{"filename": "../c.pdf", "content": b64(PDF)}],
                },
            ]
        },
        headers=account.headers,
    )
    data = answer.json()["data"]
    assert (data["queued"], data["failed"]) == (2, 1)
    assert "messages.2.attachments.0.filename" in data["messages"][2]["error"]
    await app_client.app.state.services.worker().run(until_idle=True)
    by_recipient = {m.rcpt_tos[0]: parsed(m.data) for m in smtp_sink.messages}
    assert set(by_recipient) == {"a@example.com", "b@example.com"}
    assert files_of(by_recipient["a@example.com"])["a.pdf"].get_payload(decode=True) == PDF
    assert files_of(by_recipient["b@example.com"]) == {}


@pytest.mark.parametrize(
    ("attachments", "field", "says"),
    [
        ([{"filename": "a.pdf", "content": "not base64!"}], "attachments.0.content", "base64"),
        ([{"filename": "a.pdf", "content": "QUJ"}], "attachments.0.content", "base64"),
        ([{"filename": "", "content": "QUJD"}], "attachments.0.filename", "is required"),
        ([{"filename": "   ", "content": "QUJD"}], "attachments.0.filename", "is required"),
        (
            [{"filename": "../etc/passwd", "content": "QUJD"}],
            "attachments.0.filename",
            "not a path",
        ),
        ([{"filename": "C:\\x.exe", "content": "QUJD"}], "attachments.0.filename", "not a path"),
        ([{"filename": "..", "content": "QUJD"}], "attachments.0.filename", "not a path"),
        ([{"filename": "a\r\nBcc: x.pdf", "content": "QUJD"}], "attachments.0.filename", "control"),
        ([{"filename": "a\x00.pdf", "content": "QUJD"}], "attachments.0.filename", "control"),
        ([{"filename": "a" * 256, "content": "QUJD"}], "attachments.0.filename", "255"),
        ([{"content": "QUJD"}], "attachments.0.filename", "Field required"),
        ([{"filename": "a.pdf"}], "attachments.0.content", "Field required"),
        (
            [{"filename": "a", "content": "QUJD", "content_type": "pdf"}],
            "attachments.0.content_type",
            "media type",
        ),
        (
            [{"filename": "a", "content": "QUJD", "content_type": "text/plain\r\nBcc: x"}],
            "attachments.0.content_type",
            "media type",
        ),
        (
            [{"filename": "a", "content": "QUJD", "content_type": "message/rfc822"}],
            "attachments.0.content_type",
            "application/octet-stream",
        ),
        (
            [{"filename": "a", "content": "QUJD", "content_type": "text/plain; name=b"}],
            "attachments.0.content_type",
            "filename names it",
        ),
        (
            [{"filename": "a.png", "content": "QUJD", "content_id": "logo"}],
            "attachments.0.content_id",
            "has none",  # a text-only message has no html to show it
        ),
        (
            [{"filename": f"{n}.txt", "content": "QUJD"} for n in range(51)],
            "attachments",
            "at most 50",
        ),
        ("QUJD", "attachments", "valid array"),
    ],
)
async def test_bad_attachments_are_refused_naming_the_field(
    app_client, make_account, smtp_sink, attachments, field, says
):
    account = await make_account(sink=smtp_sink)
    answer = await app_client.post(
        SEND, json={**ITEM, "attachments": attachments}, headers=account.headers
    )
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    details = {detail["field"]: detail["message"] for detail in error["details"]}
    assert field in details, details
    assert says in details[field]
    assert smtp_sink.messages == []


async def test_inline_content_ids_are_unique_and_plain(app_client, make_account, smtp_sink):
    account = await make_account(sink=smtp_sink)
    answer = await app_client.post(
        SEND,
        json={
            **ITEM,
            "html": "<img src=cid:a>",
            "attachments": [
                {"filename": "a.png", "content": "QUJD", "content_id": "a"},
                {"filename": "b.png", "content": "QUJD", "content_id": "<a>"},
                {"filename": "c.png", "content": "QUJD", "content_id": "has space"},
            ],
        },
        headers=account.headers,
    )
    details = {d["field"]: d["message"] for d in answer.json()["error"]["details"]}
    assert details == {
        "attachments.1.content_id": "is given to another attachment already",
        "attachments.2.content_id": "must be printable ASCII without spaces or angle brackets",
    }


async def test_the_size_limit_counts_decoded_bytes(app_client, make_account, smtp_sink, settings):
    settings.max_attachment_bytes = 1000
    account = await make_account(sink=smtp_sink)
    files = [{"filename": f"{n}.bin", "content": b64(b"x" * 400)} for n in range(3)]
    over = await app_client.post(SEND, json={**ITEM, "attachments": files}, headers=account.headers)
    assert over.status_code == 400
    [detail] = over.json()["error"]["details"]
    assert detail["field"] == "attachments"
    assert "1200 bytes decoded, over the 1000" in detail["message"]
    # 4/3 of that in base64 is over 1000 too, yet what counts is what the mail carries.
    within = await app_client.post(
        SEND, json={**ITEM, "attachments": files[:2]}, headers=account.headers
    )
    assert within.status_code == 200, within.text


async def test_unknown_attachment_fields_are_named(app_client, make_account, smtp_sink):
    account = await make_account(sink=smtp_sink)
    answer = await app_client.post(
        SEND,
        json={
            **ITEM,
            "attachments": [{"filename": "a.txt", "content": "QUJD", "disposition": "x"}],
        },
        headers=account.headers,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"]["ignored_fields"] == ["attachments.0.disposition"]


def test_the_sdk_sends_bytes_as_base64_and_reads_the_list():
    seen: list[dict] = []

    def server(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            message = {
                "message_id": "<a.1@x.example>",
                "status": "sent",
                "from_email": "s@x.example",
                "to_email": "user@example.com",
                "subject": "Your receipt",
                "created_at": "2026-12-07T10:00:00",
                "attachments": [
                    {
                        "filename": "a.pdf",
                        "content_type": "application/pdf",
                        "size": 3,
                        "content_id": None,
                    }
                ],
            }
            return httpx.Response(
                200, json={"success": True, "data": {"message": message, "events": []}}
            )
        seen.append(json.loads(request.content))
        if request.url.path.endswith("send-batch"):
            item = {
                "to": "user@example.com",
                "status": "queued",
                "queue_id": 1,
                "message_id": "<b>",
            }
            batch = {"total": 1, "queued": 1, "failed": 0, "messages": [item]}
            return httpx.Response(200, json={"success": True, "data": batch})
        data = {
            "message_id": "<a.1@x.example>",
            "status": "sent",
            "to": "user@example.com",
            "from": "s@x",
        }
        return httpx.Response(200, json={"success": True, "data": data})

    client = Client(
        "mp_live_" + "k" * 32, base_url="http://mail.test", transport=httpx.MockTransport(server)
    )
    client.mail.send(**ITEM, attachments=[{"filename": "a.pdf", "content": b"ABC"}])
    client.mail.send_batch(
        messages=[
            {
                **ITEM,
                "attachments": [
                    {"filename": "b.txt", "content": "QUJD", "content_type": "text/plain"}
                ],
            }
        ]
    )
    assert seen[0]["attachments"] == [{"filename": "a.pdf", "content": "QUJD"}]
    assert seen[1]["messages"][0]["attachments"][0]["content"] == "QUJD"  # base64 already
    status = client.mail.status("<a.1@x.example>")
    assert status.message.attachments == (AttachmentInfo("a.pdf", "application/pdf", 3, None),)
