"""Composing the RFC 5322 / MIME bytes of an `OutgoingMessage`, by hand, for speed.

``email.message.EmailMessage`` composes roughly a thousand messages a second per core; this
module runs on every send, so it builds the bytes directly. The output is deliberately narrow:

* every line ends in CRLF; header lines fold at whitespace to stay within 76 characters where
  the text allows, and no line reaches the 998-octet limit;
* header text that is not plain printable ASCII (or that could be mistaken for an encoded-word)
  becomes RFC 2047 ``B`` encoded-words in UTF-8, so the header section is pure ASCII;
* bodies are ``7bit`` when they are ASCII with short lines, otherwise ``quoted-printable``;
  attachments are ``base64`` in lines of 76 characters, named by RFC 2231 parameters when the
  name is not short plain ASCII;
* the structure is only as deep as the message needs: a text part, or
  ``multipart/alternative`` (text, html); inside ``multipart/related`` with its inline parts
  (those with a Content-ID); inside ``multipart/mixed`` with its other attachments;
* Bcc recipients never appear: they exist only in the SMTP envelope;
* the same message always composes to the same bytes: nothing is random (the multipart
  boundary comes from the Message-ID), so a message composed again when it is sent, or at
  each attempt, is the very mail that was accepted.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import itertools
import re
from datetime import datetime
from email.utils import format_datetime
from urllib.parse import quote

import pybase64

from mailpass.core.outgoing import Address, Attachment, OutgoingMessage

__all__ = ["boundary_digest", "compose", "header_name_problem"]

# Characters. RFC 5322 asks for 78; RFC 2047 caps lines holding encoded-words at 76.
_SOFT_LINE_LIMIT = 76
# Octets before CRLF, for header and 7bit body lines. RFC 5322 allows 998, but sendmail's
# smtp mailer (L=990) breaks longer lines, corrupting the text.
_HARD_LINE_LIMIT = 990

_ENCODED_WORD_PREFIX = "=?utf-8?b?"
_ENCODED_WORD_SUFFIX = "?="
_ENCODED_WORD_OVERHEAD = len(_ENCODED_WORD_PREFIX) + len(_ENCODED_WORD_SUFFIX)
# 45 bytes become 60 base64 characters: a 72-character word, within RFC 2047's 75 and, after
# the folding space and a list comma, within 76 on a continuation line.
_ENCODED_WORD_BYTES = 45
# Smallest first word when a long header name leaves little room: one 4-byte character fits.
_MIN_ENCODED_WORD_BYTES = 6

_FROM_HEADER_CACHE_SIZE = 256  # distinct senders whose From header line is kept

# RFC 5322 atext: a display name made of these, separated by single spaces, needs no quoting.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(?: [A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*")
# Quoted names longer than this become encoded-words, which can be folded between words.
_MAX_QUOTED_NAME = 60  # characters
# Anything a lenient reader could take for an encoded-word (they contain no whitespace).
_ENCODED_WORD_LIKE = re.compile(r"=\?\S*\?=")
# RFC 5322 field name: printable ASCII except ":".
_FIELD_NAME = re.compile(r"[!-9;-~]+")
# Whitespace-delimited pieces of unstructured text; each piece after the first starts with the
# whitespace that a fold may break before. A trailing whitespace run is its own piece.
_UNSTRUCTURED_PIECES = re.compile(r"[ \t]*[^ \t]+|[ \t]+")

# Headers compose() writes itself; an extra header with one of these names would make the
# message ambiguous (two Subjects) or leak Bcc recipients.
_RESERVED_HEADERS = frozenset(
    {
        "bcc",
        "cc",
        "content-transfer-encoding",
        "content-type",
        "date",
        "from",
        "message-id",
        "mime-version",
        "reply-to",
        "subject",
        "to",
    }
)

# "=_" can never occur in quoted-printable output (a literal "=" is always followed by hex
# digits or a line break), so a collision is only possible, and astronomically unlikely, in a
# 7bit body; _new_boundary() still checks every body.
_BOUNDARY_PREFIX = "=_mailpass_"
# A parameter value (a file name) up to this long, in plain ASCII, is written as a quoted
# string; longer or other text in RFC 2231 sections of this many characters.
_MAX_QUOTED_PARAMETER = 60
_BOUNDARY_DIGEST_BYTES = 16  # 32 hex digits


def compose(message: OutgoingMessage) -> bytes:
    """Return the complete message (headers and body) as bytes with CRLF line endings.

    With one body the message is a single text part; with both, ``multipart/alternative``
    with the text first. A single part that does not end with a line break gets one, as SMTP
    would add it anyway.

    Raises `ValueError` if a header-bound value contains CR, LF or NUL, or if an extra header
    is malformed or duplicates one that compose() writes itself.
    """
    lines = [
        _date_header(message.date),
        _from_header(message.sender.email, message.sender.name),
        _address_header("To", message.to) if message.to else "To: undisclosed-recipients:;",
    ]
    if message.cc:
        lines.append(_address_header("Cc", message.cc))
    if message.reply_to:
        lines.append(_address_header("Reply-To", message.reply_to))
    lines.append(_unstructured_header("Subject", message.subject))
    _check_header_value(message.message_id)
    lines.append("Message-ID: " + message.message_id)
    lines.append("MIME-Version: 1.0")

    parts: list[tuple[str, bytes, str]] = []
    if message.text is not None:
        parts.append(("text/plain", *_encode_body(message.text)))
    if message.html is not None:
        parts.append(("text/html", *_encode_body(message.html)))
    if not parts:
        # An empty message is still a valid one; what a sender must supply is the API's call.
        parts.append(("text/plain", b"", "7bit"))

    if message.attachments:
        return _compose_with_attachments(message, lines, parts)

    if len(parts) == 1:
        content_type, body, transfer_encoding = parts[0]
        lines.append(f"Content-Type: {content_type}; charset=utf-8")
        lines.append("Content-Transfer-Encoding: " + transfer_encoding)
        lines.extend(_extra_headers(message.extra_headers))
        if body and not body.endswith(b"\r\n"):
            # SMTP data ends with a line break anyway; adding it here keeps the bytes complete.
            body += b"\r\n"
        return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + body

    boundary = _new_boundary(message.message_id, [body for _, body, _ in parts])
    lines.append(f'Content-Type: multipart/alternative; boundary="{boundary}"')
    lines.extend(_extra_headers(message.extra_headers))
    chunks = [("\r\n".join(lines) + "\r\n").encode("ascii")]
    delimiter = f"\r\n--{boundary}\r\n".encode("ascii")
    for content_type, body, transfer_encoding in parts:
        chunks.append(delimiter)
        chunks.append(_part_headers(content_type, transfer_encoding))
        # The CRLF before the next delimiter belongs to the delimiter (RFC 2046), so the
        # body comes back exactly, with or without a final line break of its own.
        chunks.append(body)
    chunks.append(f"\r\n--{boundary}--\r\n".encode("ascii"))
    return b"".join(chunks)


def _compose_with_attachments(
    message: OutgoingMessage, lines: list[str], parts: list[tuple[str, bytes, str]]
) -> bytes:
    """The general structure: the bodies (one, or alternative), inside related with the inline
    parts when there are any, inside mixed with the other attachments when there are any."""
    bodies = [body for _, body, _ in parts]
    # Each level's boundary differs from the others' (another seed), and none occurs in a text
    # body; base64 never holds "=_", so attachments need no look.
    if len(parts) == 1:
        content_type, body, transfer_encoding = parts[0]
        entity: _Entity = (
            [
                f"Content-Type: {content_type}; charset=utf-8",
                "Content-Transfer-Encoding: " + transfer_encoding,
            ],
            [b"\r\n", body],
        )
    else:
        boundary = _new_boundary(message.message_id, bodies)
        entity = _multipart(
            "alternative",
            boundary,
            [
                _part_headers(content_type, encoding) + body
                for content_type, body, encoding in parts
            ],
        )
    inline = [attachment for attachment in message.attachments if attachment.inline]
    files = [attachment for attachment in message.attachments if not attachment.inline]
    if inline:
        boundary = _new_boundary("related:" + message.message_id, bodies)
        entity = _multipart(
            "related", boundary, [_entity_bytes(entity), *map(_attachment_bytes, inline)]
        )
    if files:
        boundary = _new_boundary("mixed:" + message.message_id, bodies)
        entity = _multipart(
            "mixed", boundary, [_entity_bytes(entity), *map(_attachment_bytes, files)]
        )
    header_lines, body_chunks = entity
    head = "\r\n".join([*lines, *header_lines, *_extra_headers(message.extra_headers)])
    return b"".join([(head + "\r\n").encode("ascii"), *body_chunks])


# A MIME entity as its header lines and the chunks after them: the blank line that ends the
# headers, then the body.
_Entity = tuple[list[str], list[bytes]]


def _multipart(subtype: str, boundary: str, children: list[bytes]) -> _Entity:
    delimiter = f"\r\n--{boundary}\r\n".encode("ascii")
    chunks: list[bytes] = []
    for child in children:
        chunks.append(delimiter)
        chunks.append(child)
    chunks.append(f"\r\n--{boundary}--\r\n".encode("ascii"))
    # Folded before the boundary: on one line, it would be 84 to 91 characters.
    return [f'Content-Type: multipart/{subtype};\r\n boundary="{boundary}"'], chunks


def _entity_bytes(entity: _Entity) -> bytes:
    header_lines, body_chunks = entity
    return b"".join([("\r\n".join(header_lines) + "\r\n").encode("ascii"), *body_chunks])


def _attachment_bytes(attachment: Attachment) -> bytes:
    """An attachment's part: its headers, a blank line and its content in base64 lines of 76
    characters (RFC 2045), the last without a line break (the next delimiter's CRLF ends it)."""
    disposition = "inline" if attachment.inline else "attachment"
    headers = [
        _parameter_header("Content-Type", attachment.content_type, "name", attachment.filename),
        "Content-Transfer-Encoding: base64",
        _parameter_header("Content-Disposition", disposition, "filename", attachment.filename),
    ]
    if attachment.content_id is not None:
        _check_header_value(attachment.content_id)
        headers.append(f"Content-ID: <{attachment.content_id}>")
    # pybase64 (SIMD) encodes 100 KiB in a tenth of the time binascii takes, and writes the
    # 76-character lines itself; they end in LF, and the last line break belongs to the next
    # delimiter.
    encoded = pybase64.encodebytes(attachment.content).replace(b"\n", b"\r\n")[:-2]
    return ("\r\n".join(headers) + "\r\n\r\n").encode("ascii") + encoded


def _parameter_header(name: str, value: str, attribute: str, text: str) -> str:
    """``Name: value; attribute=...``, the parameter folded onto lines of its own as needed."""
    _check_header_value(text)
    pieces = _parameter(attribute, text)
    line = f"{name}: {value}"
    folded = []
    for piece in pieces:
        if len(line) + 2 + len(piece) > _SOFT_LINE_LIMIT:
            folded.append(line + ";")
            line = " " + piece
        else:
            line += "; " + piece
    folded.append(line)
    return "\r\n".join(folded)


def _parameter(attribute: str, text: str) -> list[str]:
    """A parameter as a quoted string when ``text`` is short plain ASCII; otherwise in RFC
    2231's extended form (UTF-8, percent-encoded), split into numbered sections that each fit
    on a line, never inside an encoded octet."""
    if len(text) <= _MAX_QUOTED_PARAMETER and text.isascii() and text.isprintable():
        return [attribute + '="' + text.replace("\\", "\\\\").replace('"', '\\"') + '"']
    encoded = quote(text, safe="")
    # A section's line: a space, "name*12*=utf-8''", the section and ";".
    width = _SOFT_LINE_LIMIT - len(attribute) - len(" *12*=utf-8'';")
    if len(encoded) <= width:
        return [f"{attribute}*=utf-8''{encoded}"]
    sections = []
    start = 0
    while start < len(encoded):
        end = min(start + width, len(encoded))
        # A "%XX" triplet stays whole: step back if the cut falls after its "%" or first digit.
        if end < len(encoded) and "%" in encoded[end - 2 : end]:
            end = start + encoded[start:end].rindex("%")
        sections.append(encoded[start:end])
        start = end
    return [
        f"{attribute}*{index}*=" + ("utf-8''" if index == 0 else "") + section
        for index, section in enumerate(sections)
    ]


@functools.cache  # two content types times two encodings
def _part_headers(content_type: str, transfer_encoding: str) -> bytes:
    return (
        f"Content-Type: {content_type}; charset=utf-8\r\n"
        f"Content-Transfer-Encoding: {transfer_encoding}\r\n\r\n"
    ).encode("ascii")


# --- bodies ----------------------------------------------------------------------------------


def _encode_body(text: str) -> tuple[bytes, str]:
    """Return ``(encoded body with CRLF line endings, Content-Transfer-Encoding)``."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if (
        text.isascii()
        and "\x00" not in text
        and (len(text) <= _HARD_LINE_LIMIT or _longest_line(text) <= _HARD_LINE_LIMIT)
    ):
        return text.replace("\n", "\r\n").encode("ascii"), "7bit"
    # b2a_qp picks its line ending from the first one it sees and writes bare LF for soft
    # breaks when there is none; feeding it LF-only text and converting afterwards gives CRLF
    # everywhere. It encodes "=", controls, 8-bit bytes and trailing whitespace, and keeps
    # every line within 76 characters.
    encoded = binascii.b2a_qp(text.encode("utf-8"), istext=True)
    return encoded.replace(b"\n", b"\r\n"), "quoted-printable"


def _longest_line(text: str) -> int:
    return max(map(len, text.split("\n")))


def _new_boundary(message_id: str, encoded_bodies: list[bytes]) -> str:
    """A boundary absent from the bodies, the same each time for the same message. It only has
    to be absent, and is no secret: a digest of the Message-ID (unique to the message) serves,
    and the next digest, of a counter and the id, when a body happens to hold it."""
    for attempt in itertools.count():
        boundary = _BOUNDARY_PREFIX + boundary_digest(f"{attempt}:{message_id}")
        marker = boundary.encode("ascii")
        for body in encoded_bodies:
            if marker in body:
                break
        else:
            return boundary
    raise AssertionError("unreachable")


def boundary_digest(seed: str) -> str:
    """The random-looking part of a multipart boundary, the same for the same seed (so that
    a message composed again from its columns is the same bytes)."""
    return hashlib.blake2b(seed.encode(), digest_size=_BOUNDARY_DIGEST_BYTES).hexdigest()


# --- headers ---------------------------------------------------------------------------------


def _date_header(date: datetime) -> str:
    """``Date: Tue, 01 Dec 2026 13:51:44 +0000``; it changes once a second, so the last one is
    kept (RFC 5322's date has no fraction of a second), and the very date it was last asked
    for (a batch's messages share one) is answered without looking at it again."""
    global _last_date_header
    last_date, last_second, header = _last_date_header
    if date is last_date:
        return header
    second = date.replace(microsecond=0)
    if second != last_second:
        header = "Date: " + format_datetime(second)
    _last_date_header = (date, second, header)  # one tuple, replaced whole
    return header


_last_date_header: tuple[datetime | None, datetime | None, str] = (None, None, "")


@functools.lru_cache(maxsize=_FROM_HEADER_CACHE_SIZE)
def _from_header(email: str, name: str | None) -> str:
    # An account sends from a handful of addresses, over and over. (Keyed by the strings: an
    # Address's own hash is Python code, and took most of a cache hit.)
    return _address_header("From", (Address(email, name),))


def _check_header_value(value: str) -> None:
    """A header-bound string must never carry a line break onto the wire, whatever let it
    through. (Three scans for one character each took a fifth of a regex search's time.)"""
    if "\r" in value or "\n" in value or "\x00" in value:
        raise ValueError(f"header value {value[:100]!r} contains CR, LF or NUL")


# The headers a request may not set, and what to do instead. compose() writes the first group
# itself; the others are written by whoever signs or carries the mail.
_OWNED_HEADERS = {
    "from": "use from_email and from_name",
    "to": "use to",
    "cc": "use cc",
    "bcc": "use bcc",
    "reply-to": "use reply_to",
    "subject": "use subject",
    "message-id": "MailPass sets it",
    "date": "MailPass sets it",
    "mime-version": "MailPass sets it",
    "dkim-signature": "the mail is signed by whoever delivers it",
    "return-path": "the receiving server writes it from the envelope sender",
    "received": "each server that carries the mail writes its own",
}


def header_name_problem(name: str) -> str | None:
    """Why a request may not set a header named ``name`` (None: it may): not an RFC 5322
    field name, or one MailPass or the servers that carry the mail write themselves."""
    if not _FIELD_NAME.fullmatch(name) or len(name) > _SOFT_LINE_LIMIT - 2:
        return (
            "is not a header name: 1 to 76 printable ASCII characters, "
            "no spaces and no colon (RFC 5322)"
        )
    lowered = name.lower()
    if lowered.startswith("content-"):
        return f"{name} is written by MailPass from the message's parts"
    owned = _OWNED_HEADERS.get(lowered)
    if owned is not None:
        return f"{name} cannot be set as a header: {owned}"
    return None


def _extra_headers(headers: tuple[tuple[str, str], ...]) -> list[str]:
    lines = []
    for name, value in headers:
        problem = header_name_problem(name)
        if problem is not None or name.lower() in _RESERVED_HEADERS:
            raise ValueError(f"header {name[:100]!r}: {problem or 'written by MailPass'}")
        lines.append(_unstructured_header(name, value))
    return lines


def _unstructured_header(name: str, value: str) -> str:
    """A header line for free text, folded at whitespace or written as encoded-words."""
    _check_header_value(value)
    prefix = name + ": "
    if not _is_plain_text(value):
        return _fold_encoded_words(prefix, value)
    if len(prefix) + len(value) <= _SOFT_LINE_LIMIT:
        return prefix + value
    pieces = _UNSTRUCTURED_PIECES.findall(value)
    if len(prefix) + max(map(len, pieces)) > _HARD_LINE_LIMIT:
        # A run without whitespace too long for one line cannot be folded; encoded-words can.
        return _fold_encoded_words(prefix, value)
    folded = []
    line = prefix + pieces[0]
    for piece in pieces[1:]:
        # Folding inserts CRLF before the piece's leading whitespace, so unfolding (removing
        # the CRLF) restores the text exactly. A whitespace-only piece is never put on a line
        # of its own, which RFC 5322 forbids.
        if len(line) + len(piece) > _SOFT_LINE_LIMIT and not piece.isspace():
            folded.append(line)
            line = piece
        else:
            line += piece
    folded.append(line)
    return "\r\n".join(folded)


def _is_plain_text(value: str) -> bool:
    return (
        value.isascii()
        and value.replace("\t", " ").isprintable()
        and not _looks_like_encoded_word(value)
    )


def _looks_like_encoded_word(value: str) -> bool:
    """Whether a reader might decode part of ``value`` as an encoded-word, changing the text."""
    return "=?" in value and _ENCODED_WORD_LIKE.search(value) is not None


def _fold_encoded_words(prefix: str, value: str) -> str:
    # Whitespace between adjacent encoded-words is dropped when decoding, so the folds below
    # add nothing to the text.
    return prefix + "\r\n ".join(_encoded_words(value, _first_word_bytes(prefix)))


def _first_word_bytes(prefix: str) -> int:
    """How many bytes the first encoded-word may carry to fit on a line after ``prefix``."""
    room = _SOFT_LINE_LIMIT - len(prefix) - _ENCODED_WORD_OVERHEAD
    return min(max(room // 4 * 3, _MIN_ENCODED_WORD_BYTES), _ENCODED_WORD_BYTES)


def _encoded_words(value: str, first_word_bytes: int = _ENCODED_WORD_BYTES) -> list[str]:
    """Split ``value`` into ``=?utf-8?b?...?=`` words, never inside a UTF-8 sequence."""
    data = value.encode("utf-8")
    words = []
    start = 0
    limit = first_word_bytes
    while start < len(data):
        end = start + limit
        if end < len(data):
            # Step back off continuation bytes (10xxxxxx) to the start of a character. A
            # character is at most 4 bytes and the limit is at least 6, so this stays > start.
            while data[end] & 0xC0 == 0x80:
                end -= 1
        encoded = binascii.b2a_base64(data[start:end], newline=False).decode("ascii")
        words.append(_ENCODED_WORD_PREFIX + encoded + _ENCODED_WORD_SUFFIX)
        start = end
        limit = _ENCODED_WORD_BYTES
    return words


def _address_header(name: str, addresses: tuple[Address, ...]) -> str:
    """An address-list header folded between words and addresses, never inside one."""
    prefix = name + ": "
    if len(addresses) == 1 and not addresses[0].name:  # most To lines: one bare address
        email = addresses[0].email
        _check_header_value(email)
        return prefix + email  # one token: never folded, however long
    tokens = _mailbox_tokens(addresses[0], _first_word_bytes(prefix))
    for address in addresses[1:]:
        tokens[-1] += ","
        tokens.extend(_mailbox_tokens(address))
    folded = []
    line = prefix + tokens[0]
    for token in tokens[1:]:
        if len(line) + 1 + len(token) > _SOFT_LINE_LIMIT:
            folded.append(line)
            line = " " + token
        else:
            line += " " + token
    folded.append(line)
    return "\r\n".join(folded)


def _mailbox_tokens(address: Address, first_word_bytes: int = _ENCODED_WORD_BYTES) -> list[str]:
    """The mailbox as words that may be separated by a fold: name words, then ``<email>``."""
    _check_header_value(address.email)
    if not address.name:
        return [address.email]
    name = address.name
    _check_header_value(name)
    angle_addr = "<" + address.email + ">"
    if not _looks_like_encoded_word(name):
        if _PLAIN_NAME.fullmatch(name) and max(map(len, name.split(" "))) <= _SOFT_LINE_LIMIT:
            return [*name.split(" "), angle_addr]
        if len(name) <= _MAX_QUOTED_NAME and name.isascii() and name.isprintable():
            quoted = name.replace("\\", "\\\\").replace('"', '\\"')
            return ['"' + quoted + '"', angle_addr]
    return [*_encoded_words(name, first_word_bytes), angle_addr]
