"""Custom header fields, List-Unsubscribe, and the fields MailPass ignores, named back: through
the real API to a real SMTP server, the mail parsed with ``email.parser`` as a recipient would."""

from __future__ import annotations

import email.policy
import json
import warnings
from email.parser import BytesParser

import httpx
import pytest

import mailpass
from mailpass import Client, IgnoredFieldsWarning

SEND = "/api/v1/mail/send"
BATCH = "/api/v1/mail/send-batch"
ITEM = {"to": "user@example.com", "subject": "Your receipt", "text": "Thanks"}
LONG = "a note " * 40  # folded over several lines


def parsed(raw: bytes) -> email.message.EmailMessage:
    message = BytesParser(policy=email.policy.default).parsebytes(raw)
    assert isinstance(message, email.message.EmailMessage)
    return message


async def test_headers_and_list_unsubscribe_arrive_as_given(app_client, make_account, smtp_sink):
    account = await make_account(sink=smtp_sink)
    answer = await app_client.post(
        SEND,
        json={
            **ITEM,
            "headers": {"X-Order": "1042", "X-Note": "Grüße aus Köln", "X-Long": LONG.strip()},
            "list_unsubscribe": ["https://shop.example/u/abc", "mailto:unsub@shop.example"],
        },
        headers=account.headers,
    )
    assert answer.status_code == 200, answer.text
    assert "ignored_fields" not in answer.json()["data"]
    [received] = smtp_sink.messages
    for line in received.data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        assert len(line) <= 78, line  # folded, RFC 5322's recommendation
    mail = parsed(received.data)
    assert mail["X-Order"] == "1042"
    assert mail["X-Note"] == "Grüße aus Köln"  # RFC 2047 on the wire, the text back here
    assert b"=?utf-8?" in received.data
    assert mail["X-Long"] == LONG.strip()
    assert mail["List-Unsubscribe"] == "<https://shop.example/u/abc>, <mailto:unsub@shop.example>"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail["Subject"] == "Your receipt"
    assert len(mail.get_all("Subject")) == 1


async def test_a_mailto_alone_gets_no_one_click_post(app_client, make_account, smtp_sink):
    account = await make_account(sink=smtp_sink)
    answer = await app_client.post(
        SEND,
        json={**ITEM, "list_unsubscribe": "mailto:unsub@shop.example"},
        headers=account.headers,
    )
    assert answer.status_code == 200, answer.text
    mail = parsed(smtp_sink.messages[0].data)
    assert mail["List-Unsubscribe"] == "<mailto:unsub@shop.example>"
    assert mail["List-Unsubscribe-Post"] is None


async def test_a_batch_carries_its_default_headers_and_each_items_own(
    app_client, make_account, smtp_sink
):
    account = await make_account(sink=smtp_sink)
    answer = await app_client.post(
        BATCH,
        json={
            "headers": {"X-Campaign": "december"},
            "list_unsubscribe": "https://shop.example/u",
            "messages": [
                {**ITEM, "to": "a@example.com"},
                {**ITEM, "to": "b@example.com", "headers": {"X-Order": "7"}},
            ],
        },
        headers=account.headers,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"]["queued"] == 2
    await app_client.app.state.services.worker().run(until_idle=True)
    by_recipient = {m.rcpt_tos[0]: parsed(m.data) for m in smtp_sink.messages}
    assert by_recipient["a@example.com"]["X-Campaign"] == "december"
    assert by_recipient["a@example.com"]["X-Order"] is None
    # An item's own headers replace the batch's (as every other default does).
    assert by_recipient["b@example.com"]["X-Order"] == "7"
    assert by_recipient["b@example.com"]["X-Campaign"] is None
    for mail in by_recipient.values():
        assert mail["List-Unsubscribe"] == "<https://shop.example/u>"


@pytest.mark.parametrize(
    ("fields", "field", "says"),
    [
        ({"headers": {"Subject": "x"}}, "headers.Subject", "use subject"),
        ({"headers": {"from": "x@y.example"}}, "headers.from", "use from_email and from_name"),
        ({"headers": {"BCC": "x@y.example"}}, "headers.BCC", "use bcc"),
        ({"headers": {"Content-Type": "text/x"}}, "headers.Content-Type", "message's parts"),
        ({"headers": {"DKIM-Signature": "v=1"}}, "headers.DKIM-Signature", "signed by"),
        ({"headers": {"Received": "x"}}, "headers.Received", "each server"),
        ({"headers": {"Message-ID": "<a@b>"}}, "headers.Message-ID", "MailPass sets it"),
        ({"headers": {"X Bad": "1"}}, "headers.X Bad", "is not a header name"),
        ({"headers": {"X-Colon:": "1"}}, "headers.X-Colon:", "is not a header name"),
        ({"headers": {"X-A": "1\r\nBcc: x@y.example"}}, "headers.X-A", "line breaks"),
        ({"headers": {"X-A": "1", "x-a": "2"}}, "headers.x-a", "is given twice"),
        ({"headers": {f"X-{n}": "1" for n in range(51)}}, "headers", "at most 50"),
        ({"list_unsubscribe": "http://shop.example/u"}, "list_unsubscribe", "https:// URL"),
        ({"list_unsubscribe": ["mailto:a@b.example", "javascript:x"]}, "list_unsubscribe.1", ""),
        ({"list_unsubscribe": "https://a.example/u>, <https://evil"}, "list_unsubscribe", ""),
        (
            {"headers": {"List-Unsubscribe": "<x>"}, "list_unsubscribe": "mailto:a@b.example"},
            "headers",
            "with list_unsubscribe",
        ),
    ],
)
async def test_bad_headers_are_refused_naming_the_field(
    app_client, make_account, smtp_sink, fields, field, says
):
    account = await make_account(sink=smtp_sink)
    answer = await app_client.post(SEND, json={**ITEM, **fields}, headers=account.headers)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    details = {detail["field"]: detail["message"] for detail in error["details"]}
    assert field in details, details
    assert says in details[field]
    assert smtp_sink.messages == []


async def test_unknown_fields_are_named_in_the_answer(app_client, make_account, smtp_sink):
    account = await make_account(sink=smtp_sink)
    seed = await app_client.post(SEND, json=ITEM, headers=account.headers)
    assert set(seed.json()["data"]) == {"message_id", "status", "to", "from"}  # as ever
    typo = await app_client.post(
        SEND, json={**ITEM, "atachments": [{"filename": "a.pdf"}]}, headers=account.headers
    )
    assert typo.status_code == 200
    assert typo.json()["data"]["ignored_fields"] == ["atachments"]
    batch = await app_client.post(
        BATCH,
        json={"priority": "high", "messages": [{**ITEM, "sheduled_at": "tomorrow"}, ITEM]},
        headers=account.headers,
    )
    assert batch.json()["data"]["ignored_fields"] == ["priority", "messages.0.sheduled_at"]


def test_the_sdk_warns_of_ignored_fields_and_sends_headers():
    """With the client's own transport standing in for the server, as users can do."""
    seen: list[dict] = []

    def server(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append(body)
        data = {"message_id": "<a.1@x.example>", "status": "sent", "to": body["to"], "from": "s@x"}
        if "priority" in body:
            data["ignored_fields"] = ["priority"]
        return httpx.Response(200, json={"success": True, "data": data})

    client = Client(
        "mp_live_" + "k" * 32, base_url="http://mail.test", transport=httpx.MockTransport(server)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sent = client.mail.send(
            **ITEM, headers={"X-Order": "1"}, list_unsubscribe="mailto:u@shop.example"
        )
    assert sent.ignored_fields == ()
    assert seen[0]["headers"] == {"X-Order": "1"}
    assert seen[0]["list_unsubscribe"] == "mailto:u@shop.example"
    with pytest.warns(IgnoredFieldsWarning, match="ignored these fields of the request: priority"):
        sent = client.mail.send(**ITEM, extra_body={"priority": "high"})
    assert sent.ignored_fields == ("priority",)
    assert issubclass(mailpass.IgnoredFieldsWarning, UserWarning)
