"""The mail the bench asks MailPass to send: a typical transactional message (HTML and text,
so ``multipart/alternative``, with tags and metadata), as JSON bodies of ``/send`` and
``/send-batch``."""

from __future__ import annotations

import json

__all__ = [
    "BATCH_SIZE",
    "RECIPIENTS",
    "batch_bodies",
    "batch_body",
    "message",
    "send_bodies",
    "send_body",
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


def send_body(number: int = 1) -> bytes:
    return json.dumps(message(number)).encode()


def batch_body(first: int, count: int = BATCH_SIZE) -> bytes:
    return json.dumps({"messages": [message(first + i) for i in range(count)]}).encode()


def send_bodies(count: int = RECIPIENTS) -> bytes:
    """``count`` distinct ``/send`` bodies, one a line (the wrk script's round robin)."""
    return b"\n".join(send_body(number) for number in range(count)) + b"\n"


def batch_bodies(recipients: int = RECIPIENTS) -> bytes:
    """``/send-batch`` bodies, one a line, that between them write to ``recipients`` people."""
    firsts = range(0, recipients, BATCH_SIZE)
    return b"\n".join(batch_body(first) for first in firsts) + b"\n"
