"""What the SMTP relay makes of the bytes a client sent after DATA.

The mail is relayed as it was received: its header fields are split off as the raw bytes they
arrived as, only the relay's own control fields (``X-MailPass-*``) and any ``Bcc`` are taken
out, and a ``Received`` line, a ``Message-ID`` and a ``Date`` are added where needed. Nothing in
the body is re-encoded, so attachments, inline images and signed parts arrive intact; the one
exception is the html part when open or click tracking is on, whose bytes are replaced by the
rewritten html in the part's own charset and transfer encoding.

Python's ``email`` package (compat32, the fast one) reads the structure for the record: the
sender and recipients, the subject, the text and html shown in the dashboard, the attachments'
names and sizes. Its output is never what is relayed: re-serialising a message re-folds its
headers and can re-wrap its parts.
"""

from __future__ import annotations

import base64
import binascii
import email
import email.utils
import json
import re
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.message import Message
from email.policy import compat32
from typing import Any

from mailpass.core.addresses import AddressError, parse_mailbox
from mailpass.core.outgoing import Address
from mailpass.messages.request import MAX_METADATA_KEYS, MAX_TAG_CHARS, MAX_TAGS

__all__ = [
    "CONTROL_HEADERS",
    "BadMessage",
    "ControlFields",
    "ReceivedMail",
    "read_mail",
]

CONTROL_PREFIX = "x-mailpass-"
CONTROL_HEADERS = {
    "x-mailpass-tags": "X-MailPass-Tags",
    "x-mailpass-metadata": "X-MailPass-Metadata",
    "x-mailpass-track-opens": "X-MailPass-Track-Opens",
    "x-mailpass-track-clicks": "X-MailPass-Track-Clicks",
}
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
# RFC 5322's msg-id, as the messages table keeps it (with its angle brackets, at most 255).
_MESSAGE_ID = re.compile(r"<[!-;=?-~]{1,250}@[!-;=?-Z^-~]{1,250}>")
_MAX_MESSAGE_ID_CHARS = 255
_UNFOLD = re.compile(r"\r?\n(?=[ \t])")
_SIGNED_OR_ENCRYPTED = frozenset({"multipart/signed", "multipart/encrypted"})
_ENCRYPTED_TYPES = frozenset({"application/pkcs7-mime", "application/x-pkcs7-mime"})


class BadMessage(ValueError):
    """The mail cannot be relayed as it is; ``str()`` is the reply's text, and ``reply`` the
    SMTP reply (code, enhanced code and that text)."""

    def __init__(self, text: str, code: str = "554 5.6.0") -> None:
        super().__init__(text)
        self.reply = f"{code} {text}"


@dataclass(frozen=True, slots=True)
class ControlFields:
    """What the ``X-MailPass-*`` header fields set, as the API's fields of the same names."""

    tags: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    track_opens: bool | None = None
    track_clicks: bool | None = None
    ignored: tuple[str, ...] = ()  # X-MailPass-* fields it does not know, left in the mail


@dataclass(slots=True)
class ReceivedMail:
    """A mail as the relay took it: its header fields (raw, each with its line ending), its
    body (from the blank line on), and what its record needs."""

    fields: list[bytes]
    body: bytes
    sender: Address
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    reply_to: tuple[Address, ...]
    subject: str
    message_id: str | None  # the client's, when it gave a valid one
    has_date: bool
    text: str | None
    html: str | None
    html_part: Message | None  # the part the html came from, when tracking may rewrite it
    attachments: list[dict[str, Any]] | None
    control: ControlFields
    newline: bytes  # the mail's line ending (b"\r\n", as SMTP has it)

    def drop_message_id(self) -> None:
        """Take the client's Message-ID out (invalid, or another message's): the relay gives
        the mail one of its own."""
        self.fields = [raw for raw in self.fields if _name_of(raw) != "message-id"]
        self.message_id = None

    def header_recipients(self) -> set[str]:
        return {a.email.lower() for a in (*self.to, *self.cc)}

    def mail(self, prefix: bytes, body: bytes | None = None) -> bytes:
        """The bytes to relay: ``prefix`` (added fields, each ending in a line ending), the
        client's fields but for the removed ones, and ``body`` (default: as received)."""
        return b"".join((prefix, *self.fields, self.body if body is None else body))


def read_mail(data: bytes) -> ReceivedMail:
    """Read ``data`` (as received after DATA, dot-unstuffed); raises ``BadMessage``."""
    newline = b"\r\n" if b"\r\n" in data[:4096] else b"\n"
    fields, body = _split_header(data)
    if not fields:
        raise BadMessage("the message has no header fields")
    values: dict[str, str] = {}
    kept: list[bytes] = []
    control_values: dict[str, str] = {}
    unknown_control: list[str] = []
    for raw in fields:
        name = raw.split(b":", 1)[0].strip().decode("ascii", "replace")
        lower = name.lower()  # as _name_of, with the name as written kept for a reply
        if lower.startswith(CONTROL_PREFIX):
            if lower in CONTROL_HEADERS:
                control_values[lower] = _value(raw)
                continue
            unknown_control.append(name)
        elif lower == "bcc":  # never relayed: the envelope says who gets a blind copy
            continue
        elif lower in _READ and lower not in values:
            values[lower] = _value(raw)
        kept.append(raw)
    sender = _mailboxes("From", values.get("from"))
    if len(sender) != 1:
        raise BadMessage(
            "the From header field must name exactly one sender"
            if sender
            else "the message has no From header field"
        )
    message_id = values.get("message-id", "").strip() or None
    parsed = email.message_from_bytes(data, policy=compat32)
    contents = _Contents()
    contents.walk(parsed, signed=False)
    mail = ReceivedMail(
        fields=kept,
        body=body,
        sender=sender[0],
        to=_mailboxes("To", values.get("to")),
        cc=_mailboxes("Cc", values.get("cc")),
        reply_to=_mailboxes("Reply-To", values.get("reply-to")),
        subject=_decoded(values.get("subject", "")),
        message_id=message_id,
        has_date="date" in values,
        text=contents.text,
        html=contents.html,
        html_part=contents.html_part,
        attachments=contents.attachments or None,
        control=_control(control_values, tuple(unknown_control)),
        newline=newline,
    )
    if message_id is not None and (
        len(message_id) > _MAX_MESSAGE_ID_CHARS or not _MESSAGE_ID.fullmatch(message_id)
    ):
        mail.drop_message_id()
    return mail


_READ = frozenset({"from", "to", "cc", "reply-to", "subject", "message-id", "date"})


def _split_header(data: bytes) -> tuple[list[bytes], bytes]:
    """The header fields (each with its continuation lines and line ending) and the body,
    from the blank line that ends the header on (empty when there is none). A line that is
    neither a field nor a continuation ends the header too, as in Python's parser."""
    fields: list[bytes] = []
    position = 0
    size = len(data)
    while position < size:
        end = data.find(b"\n", position)
        end = size if end < 0 else end + 1
        line = data[position:end]
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line
        elif line.strip(b"\r\n") and b":" in line and not line[:1].isspace():
            colon = line.index(b":")
            if not _FIELD_NAME.fullmatch(line[:colon].rstrip()):
                break
            fields.append(line)
        else:
            break
        position = end
    return fields, data[position:]


_FIELD_NAME = re.compile(rb"[!-9;-~]+")


def _name_of(raw: bytes) -> str:
    """A header field's name, lower-cased."""
    return raw.split(b":", 1)[0].strip().decode("ascii", "replace").lower()


def _value(raw: bytes) -> str:
    """A field's value, unfolded, as text (UTF-8 where a client sent 8-bit bytes)."""
    value = raw.split(b":", 1)[1].decode("utf-8", "replace")
    return _UNFOLD.sub("", value).strip()


def _decoded(value: str) -> str:
    """A header value with its RFC 2047 encoded words decoded."""
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except (LookupError, ValueError, binascii.Error):
        return value


def _mailboxes(name: str, value: str | None) -> tuple[Address, ...]:
    if not value:
        return ()
    found = []
    for display, address in email.utils.getaddresses([value]):
        if not address:
            continue  # an empty group, "undisclosed-recipients:;"
        try:
            mailbox = parse_mailbox(address)
        except AddressError as exc:
            code = "553 5.1.7" if name == "From" else "554 5.6.0"
            raise BadMessage(f"{name}: {exc}", code) from None
        display = _decoded(display).strip()
        found.append(Address(mailbox.email, display or None))
    return tuple(found)


def _control(values: dict[str, str], ignored: tuple[str, ...]) -> ControlFields:
    tags: tuple[str, ...] = ()
    if "x-mailpass-tags" in values:
        tags = tuple(tag.strip() for tag in values["x-mailpass-tags"].split(",") if tag.strip())
        if len(tags) > MAX_TAGS:
            raise BadMessage(f"X-MailPass-Tags: at most {MAX_TAGS} tags")
        if any(len(tag) > MAX_TAG_CHARS for tag in tags):
            raise BadMessage(f"X-MailPass-Tags: a tag has 1 to {MAX_TAG_CHARS} characters")
    metadata: dict[str, Any] = {}
    if "x-mailpass-metadata" in values:
        try:
            metadata = json.loads(values["x-mailpass-metadata"])
        except ValueError:
            raise BadMessage("X-MailPass-Metadata: not valid JSON") from None
        if not isinstance(metadata, dict):
            raise BadMessage("X-MailPass-Metadata: must be a JSON object")
        if len(metadata) > MAX_METADATA_KEYS:
            raise BadMessage(f"X-MailPass-Metadata: at most {MAX_METADATA_KEYS} keys")
    return ControlFields(
        tags=tags,
        metadata=metadata,
        track_opens=_switch(values, "x-mailpass-track-opens"),
        track_clicks=_switch(values, "x-mailpass-track-clicks"),
        ignored=ignored,
    )


def _switch(values: dict[str, str], name: str) -> bool | None:
    if name not in values:
        return None
    value = values[name].strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise BadMessage(f"{CONTROL_HEADERS[name]}: {value!r} is neither true nor false")


class _Contents:
    """The first text and html body parts (not attachments), and the attachments."""

    def __init__(self) -> None:
        self.text: str | None = None
        self.html: str | None = None
        self.html_part: Message | None = None
        self.attachments: list[dict[str, Any]] = []

    def walk(self, part: Message, *, signed: bool) -> None:
        content_type = part.get_content_type()
        if content_type == "message/rfc822" or content_type in _ENCRYPTED_TYPES:
            self._attachment(part, content_type)
            return
        if part.is_multipart():
            inner = signed or content_type in _SIGNED_OR_ENCRYPTED
            for sub in part.get_payload():
                if isinstance(sub, Message):
                    self.walk(sub, signed=inner)
            return
        disposition = (part.get("Content-Disposition") or "").split(";")[0].strip().lower()
        if (
            content_type in ("text/plain", "text/html")
            and disposition != "attachment"
            and not part.get_filename()
        ):
            body = _text_of(part)
            if content_type == "text/html" and self.html is None:
                self.html = body
                self.html_part = None if signed else part
                return
            if content_type == "text/plain" and self.text is None:
                self.text = body
                return
        self._attachment(part, content_type)

    def _attachment(self, part: Message, content_type: str) -> None:
        payload = part.get_payload(decode=True)
        content_id = (part.get("Content-ID") or "").strip().strip("<>") or None
        self.attachments.append(
            {
                "filename": part.get_filename() or None,
                "content_type": content_type,
                "size": len(payload) if isinstance(payload, bytes) else len(part.as_bytes()),
                "content_id": content_id,
            }
        )


def _text_of(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "us-ascii"
    try:
        text = payload.decode(charset, "replace")
    except LookupError:
        text = payload.decode("utf-8", "replace")
    return text.replace("\r\n", "\n")  # as an API client sends it


def replace_html(mail: ReceivedMail, html: str) -> bytes | None:
    """``mail``'s body with its html part's bytes replaced by ``html``, encoded as that part
    was (charset, transfer encoding, line endings); None when the part cannot be found alone
    in the body or its charset is unknown (the mail then goes untracked)."""
    part = mail.html_part
    if part is None:
        return None
    # The part's body as it was parsed: bytes as str, non-ASCII ones as surrogates (what
    # ``get_payload()`` would decode with the part's charset).
    old = getattr(part, "_payload", None)
    if not isinstance(old, str) or not old:
        return None
    old_bytes = old.encode("ascii", "surrogateescape")
    if mail.body.count(old_bytes) != 1:
        return None
    charset = part.get_content_charset() or "us-ascii"
    try:
        encoded = "\n".join(html.splitlines()).encode(charset, "xmlcharrefreplace")
    except (LookupError, UnicodeError):
        return None
    transfer = (part.get("Content-Transfer-Encoding") or "7bit").strip().lower()
    if transfer == "base64":
        new = base64.encodebytes(encoded)
    elif transfer == "quoted-printable":
        new = binascii.b2a_qp(encoded, istext=True) + b"\n"
    else:
        new = encoded + b"\n"
    new = new.replace(b"\n", mail.newline)
    if not old_bytes.endswith(b"\n"):
        new = new[: -len(mail.newline)]
    return mail.body.replace(old_bytes, new)
