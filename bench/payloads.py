"""The mail the bench asks MailPass to send: a typical transactional message (HTML and text,
so ``multipart/alternative``, with tags and metadata), as JSON bodies of ``/send`` and
``/send-batch``."""

from __future__ import annotations

import base64
import json
import random
import time

__all__ = [
    "ATTACHMENT_BYTES",
    "BATCH_SIZE",
    "HOOK_EVENTS_PER_POST",
    "RECIPIENTS",
    "attachment_send_bodies",
    "batch_bodies",
    "batch_body",
    "direct_batch_body",
    "message",
    "send_bodies",
    "send_body",
    "sendgrid_hook_lines",
]

BATCH_SIZE = 100  # messages per /send-batch request, the API's maximum
# Distinct recipients the load cycles through, as a real stream of mail has: more than any
# cache MailPass keeps of addresses (4,096), so no request is flattered by an earlier one.
RECIPIENTS = 10_000

HTML = (
    "<html><body><h1>Your order has been confirmed</h1>"
    "<p>Hello,</p><p>Thank you for your order <strong>#{number}</strong>. We are preparing it "
    "now and will send you another message with the tracking link as soon as it ships.</p>"
    "<table><tr><td>Subtotal</td><td>42.00 EUR</td></tr>"
    "<tr><td>Shipping</td><td>4.90 EUR</td></tr>"
    "<tr><td><strong>Total</strong></td><td><strong>46.90 EUR</strong></td></tr></table>"
    "<p>Questions? Just reply to this message.</p><p>The Example Shop team</p></body></html>"
)
TEXT = (
    "Your order has been confirmed\n\nHello,\n\nThank you for your order #{number}. We are "
    "preparing it now and will send you another message with the tracking link as soon as it "
    "ships.\n\nSubtotal 42.00 EUR\nShipping 4.90 EUR\nTotal 46.90 EUR\n\nQuestions? Just reply "
    "to this message.\n\nThe Example Shop team\n"
)


def message(number: int) -> dict[str, object]:
    return {
        "to": f"customer{number}@example.com",
        "subject": f"Order #{number} confirmed",
        "html": HTML.format(number=number),
        "text": TEXT.format(number=number),
        "from_email": "orders@shop.example.com",
        "from_name": "Example Shop",
        "tags": ["order", "confirmation"],
        "metadata": {"order_id": str(number)},
    }


ATTACHMENT_BYTES = 100 * 1024  # the attachment row: one file of 100 KiB
# Distinct bodies with an attachment: each is ~140 KiB of JSON, and every wrk thread keeps them
# all. The attachment's cost (decoding, composing, storing, sending ~140 KiB) dwarfs anything a
# repeated recipient could save.
ATTACHMENT_BODIES = 200
FIRST_ATTACHMENT_NUMBER = 30_000_000  # message numbers apart from the other rows'


def attachment_send_bodies(count: int = ATTACHMENT_BODIES) -> bytes:
    """``/send`` bodies of the typical message with an invoice of ``ATTACHMENT_BYTES``, one a
    line. Its bytes are random (a PDF or an image is compressed already), the same every run."""
    lines = []
    for index in range(count):
        number = FIRST_ATTACHMENT_NUMBER + index
        content = random.Random(number).randbytes(ATTACHMENT_BYTES)  # not secret
        body = message(number)
        body["attachments"] = [
            {"filename": f"invoice-{number}.pdf", "content": base64.b64encode(content).decode()}
        ]
        lines.append(json.dumps(body).encode())
    return b"\n".join(lines) + b"\n"


def send_body(number: int = 1) -> bytes:
    return json.dumps(message(number)).encode()


def batch_body(first: int, count: int = BATCH_SIZE) -> bytes:
    return json.dumps({"messages": [message(first + i) for i in range(count)]}).encode()


def direct_batch_body(first: int, sender: str, domains: int, count: int = BATCH_SIZE) -> bytes:
    """A batch of the typical message from ``sender`` to people at ``domains`` recipient
    domains in turn (``d0.bench.test``, ``d1.bench.test``, …): direct delivery's load."""
    items = []
    for number in range(first, first + count):
        item = message(number)
        item["to"] = f"customer{number}@d{number % domains}.bench.test"
        item["from_email"] = sender
        items.append(item)
    return json.dumps({"messages": items}).encode()


def send_bodies(count: int = RECIPIENTS) -> bytes:
    """``count`` distinct ``/send`` bodies, one a line (the wrk script's round robin)."""
    return b"\n".join(send_body(number) for number in range(count)) + b"\n"


def batch_bodies(recipients: int = RECIPIENTS) -> bytes:
    """``/send-batch`` bodies, one a line, that between them write to ``recipients`` people."""
    firsts = range(0, recipients, BATCH_SIZE)
    return b"\n".join(batch_body(first) for first in firsts) + b"\n"


# SendGrid posts its events in batches (up to a few hundred, by its documentation): 100 a POST.
HOOK_EVENTS_PER_POST = 100
# Of every 100 events, this many bounce (``blocked``, for now: soft) and this many for good.
SOFT_BOUNCES_PER_100 = 2
HARD_BOUNCES_PER_100 = 1


def sendgrid_hook_lines(
    message_ids: list[str], private_key: object, posts: int, *, first_post: int = 0
) -> bytes:
    """``posts`` Event Webhook POSTs as SendGrid signs them (ECDSA P-256 over the timestamp and
    the body), a line each: signature, timestamp and body, by tabs. Every event is new (its own
    ``sg_event_id``); they are about ``message_ids`` in turn, mostly deliveries, a few bounces."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    assert isinstance(private_key, ec.EllipticCurvePrivateKey)
    stamp = str(int(time.time()))
    lines = []
    number = 0
    for post in range(first_post, first_post + posts):
        events = []
        for index in range(HOOK_EVENTS_PER_POST):
            message_id = message_ids[number % len(message_ids)]
            number += 1
            event: dict[str, object] = {
                "email": f"customer{number % RECIPIENTS}@example.com",
                "timestamp": int(stamp),
                "smtp-id": message_id,
                "sg_event_id": f"bench-{post}-{index}",
                "sg_message_id": f"bench{number}.filter0001.16648.5515E0B88.0",
            }
            if index < HARD_BOUNCES_PER_100:
                event.update(event="bounce", type="bounce", status="5.1.1", reason="550 5.1.1")
            elif index < HARD_BOUNCES_PER_100 + SOFT_BOUNCES_PER_100:
                event.update(event="bounce", type="blocked", status="4.2.2", reason="452 full")
            else:
                event.update(event="delivered", response="250 2.0.0 OK")
            events.append(event)
        body = json.dumps(events, separators=(",", ":"))
        signature = private_key.sign((stamp + body).encode(), ec.ECDSA(hashes.SHA256()))
        lines.append(f"{base64.b64encode(signature).decode()}\t{stamp}\t{body}")
    return ("\n".join(lines) + "\n").encode()
