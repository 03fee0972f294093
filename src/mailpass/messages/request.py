"""The wire format of a message (the seed's ``/send`` body), and its validation.

Parsing is pydantic's (straight from JSON bytes, in Rust); the e-mail specific checks
(addresses, CR/LF in header-bound fields, size limits) are ours, and every problem is reported
with the field it concerns so a client can show it.
"""

from __future__ import annotations

import mimetypes
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pybase64
from pydantic import BaseModel, ConfigDict, StrictBool
from pydantic import ValidationError as PydanticValidationError

from mailpass.clock import isoformat, utcnow
from mailpass.core.addresses import (
    AddressError,
    HeaderValueError,
    check_header_text,
    parse_mailbox,
)
from mailpass.core.mime import header_name_problem
from mailpass.core.outgoing import Address, Attachment, format_addresses
from mailpass.errors import ValidationError

__all__ = [
    "DEFAULT_MAX_ATTACHMENT_BYTES",
    "MAX_ATTACHMENTS",
    "MAX_BATCH_MESSAGES",
    "MAX_RECIPIENTS",
    "BatchFields",
    "MessageFields",
    "ValidMessage",
    "field_errors",
    "parse_batch",
    "parse_json_body",
    "validate_batch_item",
    "validate_message",
]

MAX_RECIPIENTS = 50  # To + Cc + Bcc, as Postmark allows
MAX_ADDRESS_LIST_CHARS = 1000  # `to` and `reply_to` are kept in columns of that size
MAX_SUBJECT_CHARS = 998
MAX_NAME_CHARS = 255
MAX_TAGS = 20
MAX_TAG_CHARS = 100
MAX_METADATA_KEYS = 50
MAX_HEADERS = 50  # custom header fields of one message
MAX_HEADER_VALUE_CHARS = 2000
MAX_UNSUBSCRIBE_CHARS = 2000
MAX_ATTACHMENTS = 50  # parts of one message, inline ones included
DEFAULT_MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024  # decoded, all of a message's attachments
MAX_FILENAME_CHARS = 255
MAX_CONTENT_ID_CHARS = 250
MAX_SCHEDULE_AHEAD = timedelta(days=30)
# A scheduled time this far in the past is taken as "now": the client's clock may be behind.
SCHEDULE_PAST_TOLERANCE = timedelta(minutes=1)
# RFC 6838's restricted names, "type/subtype", with any "; attribute=token" parameters.
_MEDIA_NAME = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
_CONTENT_TYPE = re.compile(
    rf"({_MEDIA_NAME})/({_MEDIA_NAME})((?:\s*;\s*{_MEDIA_NAME}=[A-Za-z0-9!#$&^_.+-]+)*)\s*"
)
# RFC 2392's content-id, without its angle brackets: printable ASCII but "<", ">" and space.
_CONTENT_ID = re.compile(r"[!-;=?-~]+")
# Names guessed from the file name with Python's own table only, not the machine's
# /etc/mime.types, so that the same file is typed the same on every installation.
_MEDIA_TYPES = mimetypes.MimeTypes()
_DEFAULT_MEDIA_TYPE = "application/octet-stream"

AddressInput = str | list[str] | None
ModelT = TypeVar("ModelT", bound=BaseModel)
# Unknown fields are kept aside (``model_extra``), not acted on, and named back to the client
# (``ignored_fields``): a typo such as "atachments" is seen, not silently lost. pydantic's JSON
# parser keeps the strings it makes, to give the same object for the same text next time: the
# keys repeat in every message, but the values (recipients, subjects, bodies) seldom do, and
# looking each up cost more than it saved. A batch parses ~10 % faster with only the keys kept.
_WIRE_MODEL = ConfigDict(extra="allow", frozen=True, cache_strings="keys")


MAX_BATCH_MESSAGES = 100
BATCH_DEFAULTS = (
    "from_email",
    "from_name",
    "reply_to",
    "tags",
    "metadata",
    "track_opens",
    "track_clicks",
    "headers",
    "list_unsubscribe",
    "scheduled_at",
)


class AttachmentFields(BaseModel):
    """One file of a message: ``content`` in base64 (RFC 4648's standard alphabet; line
    breaks in it are fine)."""

    model_config = _WIRE_MODEL

    filename: str
    content: str
    content_type: str | None = None
    # Makes it an inline part, which the html refers to as "cid:<content_id>".
    content_id: str | None = None


class MessageFields(BaseModel):
    """One message as the seed's ``/send`` takes it. Unknown fields are ignored, and named in
    the answer (``ignored_fields``)."""

    model_config = _WIRE_MODEL

    to: str | list[str] | None = None
    subject: str | None = None
    html: str | None = None
    text: str | None = None
    from_email: str | None = None
    from_name: str | None = None
    reply_to: AddressInput = None
    cc: AddressInput = None
    bcc: AddressInput = None
    tags: list[str] | None = None
    metadata: dict[str, Any] | None = None
    # Tracking of this message (html only); None: the provider's setting.
    track_opens: StrictBool | None = None
    track_clicks: StrictBool | None = None
    # Header fields of the mail's own: {"X-Order": "1"}.
    headers: dict[str, str] | None = None
    # "https://…" or "mailto:…", or a list of both: List-Unsubscribe (RFC 2369, and RFC 8058's
    # one-click List-Unsubscribe-Post for an https URL).
    list_unsubscribe: str | list[str] | None = None
    attachments: list[AttachmentFields] | None = None
    # ISO 8601, with an offset or in UTC: queue it until then (at most 30 days ahead).
    scheduled_at: str | None = None

    @property
    def ignored(self) -> list[str]:
        """The names of the fields this message had that MailPass does not know, its
        attachments' ("attachments.0.x") included."""
        names = list(self.model_extra or ())
        for index, attachment in enumerate(self.attachments or ()):
            names.extend(f"attachments.{index}.{name}" for name in attachment.model_extra or ())
        return names


class BatchFields(BaseModel):
    """The seed's ``/send-batch`` body: ``messages`` plus defaults for the items.

    Items stay raw JSON objects here so that one bad item fails alone instead of failing the
    whole request; ``validate_batch_item`` checks each. (When every item parses, they come as
    ``MessageFields`` already: see ``parse_batch``.)
    """

    model_config = _WIRE_MODEL

    messages: list[Any]
    from_email: str | None = None
    from_name: str | None = None
    reply_to: AddressInput = None
    tags: list[str] | None = None
    metadata: dict[str, Any] | None = None
    # For every item that does not say: tracking on or off; None: the provider's setting.
    track_opens: StrictBool | None = None
    track_clicks: StrictBool | None = None
    headers: dict[str, str] | None = None
    list_unsubscribe: str | list[str] | None = None
    scheduled_at: str | None = None

    @property
    def ignored(self) -> list[str]:
        """The names of the batch's own fields MailPass does not know (not its items')."""
        return list(self.model_extra or ())

    def item_defaults(self) -> dict[str, Any]:
        """The defaults this batch sets, by name, for ``validate_batch_item``."""
        defaults = ((name, getattr(self, name)) for name in BATCH_DEFAULTS)
        return {name: value for name, value in defaults if value is not None}

    def check_size(self) -> None:
        if not 1 <= len(self.messages) <= MAX_BATCH_MESSAGES:
            raise ValidationError(
                f"messages must hold 1 to {MAX_BATCH_MESSAGES} items, not {len(self.messages)}",
                details=[{"field": "messages", "message": f"1 to {MAX_BATCH_MESSAGES} items"}],
            )


class _ParsedBatch(BatchFields):
    """A batch body whose items all parse, each straight from the JSON into its fields."""

    messages: list[MessageFields]


def parse_batch(body: bytes) -> BatchFields:
    """The ``/send-batch`` body. Most batches are valid throughout, and their items are parsed
    from the JSON into ``MessageFields`` in one pass: half the CPU of parsing them into dicts
    and validating each dict again. If anything does not parse, the body is parsed with its
    items left raw (``BatchFields``), so that each bad item can fail alone."""
    try:
        return _ParsedBatch.model_validate_json(body)
    except PydanticValidationError:
        return parse_json_body(body, BatchFields)


@dataclass(slots=True)
class ValidMessage:
    """A message that passed every check. ``sender`` is unset when the provider's default sender
    is to be used; ``from_name`` then names it.

    Nothing changes one once made. It is not a frozen dataclass because one is made for every
    message, and a frozen dataclass's ``__init__`` took four times as long (~2 µs here)."""

    to: tuple[Address, ...]
    subject: str
    html: str | None
    text: str | None
    sender: Address | None
    from_name: str | None
    reply_to: tuple[Address, ...]
    cc: tuple[Address, ...]
    bcc: tuple[Address, ...]
    tags: tuple[str, ...]
    metadata: dict[str, Any]
    track_opens: bool | None = None
    track_clicks: bool | None = None
    # Header fields of the mail's own, List-Unsubscribe included, in order.
    headers: tuple[tuple[str, str], ...] = ()
    attachments: tuple[Attachment, ...] = ()
    # When to send it (naive UTC), if it was scheduled; never before the time it was accepted.
    scheduled_at: datetime | None = None
    ignored: tuple[str, ...] = ()  # unknown fields it had, by name


# The names pydantic gives the alternatives of a field that takes an address or a list of them
# (``AddressInput``), in an error's location.
_ADDRESS_ALTERNATIVES = ("str", "list[str]")


def field_errors(error: PydanticValidationError, prefix: str = "") -> list[dict[str, Any]]:
    """pydantic's errors as ``[{"field": "cc.0", "message": "..."}]``, one a field.

    A field that takes an address or a list of them gets an error from each alternative: when
    the value is a list, the error inside it says what is wrong ("cc.1: Input should be a valid
    string"); when the value is neither (a number, an object), the field is named once, with
    what it takes."""
    details: dict[str, dict[str, Any]] = {}
    neither: set[str] = set()  # fields whose value an alternative rejected as a whole
    for item in error.errors(include_url=False, include_input=False):
        parts = [str(part) for part in item["loc"] if part != "__root__"]
        whole = bool(parts) and parts[-1] in _ADDRESS_ALTERNATIVES
        field = prefix + ".".join(part for part in parts if part not in _ADDRESS_ALTERNATIVES)
        if whole:
            neither.add(field)
        message = "must be an address or a list of addresses" if whole else item["msg"]
        details.setdefault(field, {"field": field, "message": message})
    return [
        detail
        for field, detail in details.items()
        if field not in neither or not any(name.startswith(f"{field}.") for name in details)
    ]


def parse_json_body(body: bytes, model: type[ModelT]) -> ModelT:
    """Parse a request body into ``model``; a malformed body is a VALIDATION_ERROR."""
    if not body.strip():
        raise ValidationError("the request body is empty; send a JSON object")
    try:
        return model.model_validate_json(body)
    except PydanticValidationError as exc:
        if any(item["type"] in ("json_invalid", "json_type") for item in exc.errors()):
            raise ValidationError("the request body is not valid JSON") from None
        if any(item["type"] == "model_type" and not item["loc"] for item in exc.errors()):
            raise ValidationError("the request body must be a JSON object") from None
        raise ValidationError("the request has invalid fields", details=field_errors(exc)) from None


class _Problems:
    """Collects every problem of one message so the client hears all of them at once."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.details: list[dict[str, Any]] = []

    def add(self, field: str, message: str) -> None:
        self.details.append({"field": self.prefix + field, "message": message})

    def addresses(self, field: str, value: AddressInput, *, required: bool) -> tuple[Address, ...]:
        if not value:  # None, "" or []
            if required:
                self.add(field, "is required")
            return ()
        if isinstance(value, str):
            try:
                return (parse_mailbox(value),)
            except AddressError as exc:
                self.add(field, str(exc))
                return ()
        parsed = []
        for index, item in enumerate(value):
            try:
                parsed.append(parse_mailbox(item))
            except AddressError as exc:
                self.add(f"{field}.{index}", str(exc))
        return tuple(parsed)

    def custom_headers(self, headers: dict[str, str]) -> tuple[tuple[str, str], ...]:
        if len(headers) > MAX_HEADERS:
            self.add("headers", f"at most {MAX_HEADERS} header fields")
            return ()
        valid: list[tuple[str, str]] = []
        seen: set[str] = set()
        for name, value in headers.items():
            problem = header_name_problem(name)
            if problem is None and name.lower() in seen:
                problem = "is given twice (header names are case-insensitive)"
            if problem is not None:
                self.add(f"headers.{name}", problem)
                continue
            seen.add(name.lower())
            checked = self.header_text(f"headers.{name}", value, MAX_HEADER_VALUE_CHARS)
            if checked is not None:
                valid.append((name, checked))
        return tuple(valid)

    def list_unsubscribe(
        self, value: str | list[str], headers: tuple[tuple[str, str], ...]
    ) -> tuple[tuple[str, str], ...]:
        if any(name.lower().startswith("list-unsubscribe") for name, _ in headers):
            self.add("headers", "List-Unsubscribe is set with list_unsubscribe, not headers")
            return ()
        targets = [value] if isinstance(value, str) else value
        valid = []
        for index, target in enumerate(targets):
            field = "list_unsubscribe" if isinstance(value, str) else f"list_unsubscribe.{index}"
            problem = _unsubscribe_problem(target)
            if problem is not None:
                self.add(field, problem)
            else:
                valid.append(target)
        if not valid or len(valid) < len(targets):
            return ()
        lines = [("List-Unsubscribe", ", ".join(f"<{target}>" for target in valid))]
        if any(target.lower().startswith("https://") for target in valid):
            # RFC 8058: a mailbox provider may unsubscribe with one POST to the https URL.
            lines.append(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
        return tuple(lines)

    def attachments(
        self, given: list[AttachmentFields], has_html: bool, max_bytes: int
    ) -> tuple[Attachment, ...]:
        if len(given) > MAX_ATTACHMENTS:
            self.add("attachments", f"at most {MAX_ATTACHMENTS} attachments")
            return ()
        valid = []
        total = 0
        content_ids: set[str] = set()
        for index, fields in enumerate(given):
            field = f"attachments.{index}"
            filename = self.filename(f"{field}.filename", fields.filename)
            content = self.base64(f"{field}.content", fields.content)
            content_type = self.content_type(f"{field}.content_type", fields, filename)
            content_id = None
            if fields.content_id is not None:
                content_id = self.content_id(f"{field}.content_id", fields.content_id, has_html)
                if content_id is not None and content_id in content_ids:
                    self.add(f"{field}.content_id", "is given to another attachment already")
                    content_id = None
                elif content_id is not None:
                    content_ids.add(content_id)
            if content is not None:
                total += len(content)
            if (
                filename
                and content is not None
                and content_type
                and (fields.content_id is None or content_id is not None)
            ):
                valid.append(Attachment(filename, content_type, content, content_id))
        if total > max_bytes:
            self.add(
                "attachments",
                f"the attachments are {total} bytes decoded, over the {max_bytes} a message "
                "may carry",
            )
        return tuple(valid) if len(valid) == len(given) else ()

    def filename(self, field: str, name: str) -> str | None:
        if not name.strip():
            self.add(field, "is required")
        elif len(name) > MAX_FILENAME_CHARS:
            self.add(field, f"is longer than {MAX_FILENAME_CHARS} characters")
        elif "/" in name or "\\" in name or name in (".", ".."):
            self.add(field, "is a file name, not a path: no / or \\")
        elif any(unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp") for char in name):
            self.add(field, "must not contain control characters (CR, LF, NUL, tabs...)")
        else:
            return name
        return None

    def base64(self, field: str, text: str) -> bytes | None:
        # pybase64 (SIMD): 100 KiB in 6 us, where binascii took 300 to 500.
        try:
            return pybase64.b64decode(text, validate=True)
        except ValueError:  # binascii.Error is one
            pass
        # Line breaks as most encoders write them (every 76 or 64 characters) are fine.
        try:
            return pybase64.b64decode("".join(text.split()), validate=True)
        except ValueError:
            self.add(field, "is not valid base64 (RFC 4648's standard alphabet, padded with =)")
            return None

    def content_type(
        self, field: str, fields: AttachmentFields, filename: str | None
    ) -> str | None:
        if fields.content_type is None:
            guessed, _ = _MEDIA_TYPES.guess_type(filename or "", strict=False)
            if guessed is None or guessed.startswith(("message/", "multipart/")):
                return _DEFAULT_MEDIA_TYPE
            return guessed
        match = _CONTENT_TYPE.fullmatch(fields.content_type)
        if match is None:
            self.add(field, 'must be a media type such as "application/pdf" or "text/csv"')
            return None
        kind, subtype, parameters = match.groups()
        kind = kind.lower()
        if kind in ("message", "multipart"):
            # RFC 2046 forbids base64 for these, and every attachment is carried in base64.
            self.add(
                field,
                f"{kind}/* cannot be carried as an attachment: send it as application/octet-stream",
            )
            return None
        names = [part.split("=")[0].strip().lower() for part in parameters.split(";")[1:]]
        if "name" in names:
            self.add(field, "must not have a name parameter: filename names it")
            return None
        extra = "".join(f"; {part.strip()}" for part in parameters.split(";")[1:])
        return f"{kind}/{subtype.lower()}{extra}"

    def content_id(self, field: str, value: str, has_html: bool) -> str | None:
        if value.startswith("<") and value.endswith(">"):
            value = value[1:-1]
        if not has_html:
            self.add(field, "makes an inline part for the html (cid:), and the message has none")
        elif not value or len(value) > MAX_CONTENT_ID_CHARS:
            self.add(field, f"has 1 to {MAX_CONTENT_ID_CHARS} characters")
        elif not _CONTENT_ID.fullmatch(value):
            self.add(field, "must be printable ASCII without spaces or angle brackets")
        else:
            return value
        return None

    def scheduled_at(self, value: str, now: datetime) -> datetime | None:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            self.add(
                "scheduled_at",
                "must be an ISO 8601 date-time such as 2026-12-24T09:00:00+01:00 "
                "(without an offset: UTC)",
            )
            return None
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
        if moment > now + MAX_SCHEDULE_AHEAD:
            self.add(
                "scheduled_at",
                f"is more than {MAX_SCHEDULE_AHEAD.days} days ahead "
                f"(the latest is {isoformat(now + MAX_SCHEDULE_AHEAD)}Z)",
            )
            return None
        if moment < now - SCHEDULE_PAST_TOLERANCE:
            self.add("scheduled_at", f"is in the past (it is {isoformat(now)}Z now)")
            return None
        return max(moment, now)

    def header_text(self, field: str, value: str | None, max_chars: int) -> str | None:
        if value is None:
            return None
        try:
            check_header_text(value)
        except HeaderValueError as exc:
            self.add(field, str(exc))
            return None
        if len(value) > max_chars:
            self.add(field, f"is longer than {max_chars} characters")
            return None
        return value


def _unsubscribe_problem(target: str) -> str | None:
    lowered = target.lower()
    if not (lowered.startswith("https://") or lowered.startswith("mailto:")):
        return "must be an https:// URL or a mailto: address"
    if len(target) > MAX_UNSUBSCRIBE_CHARS:
        return f"is longer than {MAX_UNSUBSCRIBE_CHARS} characters"
    if any(char in target for char in "<>, \t\r\n\x00"):
        # Each target is written between < and >, the list separated by commas (RFC 2369).
        return "must not contain spaces, commas, angle brackets, line breaks or NUL"
    if lowered in ("https://", "mailto:"):
        return "says where, after the scheme"
    return None


def validate_message(
    fields: MessageFields,
    prefix: str = "",
    max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES,
    now: datetime | None = None,
) -> ValidMessage:
    """Every e-mail rule the wire schema cannot express; raises one VALIDATION_ERROR listing all.
    ``max_attachment_bytes``: what a message's attachments may hold together, decoded; ``now``
    (naive UTC): when it is accepted, which a ``scheduled_at`` is checked against."""
    problems = _Problems(prefix)
    to = problems.addresses("to", fields.to, required=True)
    # Most messages have none of these.
    cc = problems.addresses("cc", fields.cc, required=False) if fields.cc else ()
    bcc = problems.addresses("bcc", fields.bcc, required=False) if fields.bcc else ()
    reply_to = (
        problems.addresses("reply_to", fields.reply_to, required=False) if fields.reply_to else ()
    )
    if len(to) + len(cc) + len(bcc) > MAX_RECIPIENTS:
        problems.add("to", f"a message takes at most {MAX_RECIPIENTS} recipients (to, cc and bcc)")
    for name, addresses in (("to", to), ("reply_to", reply_to)):
        if len(format_addresses(addresses)) > MAX_ADDRESS_LIST_CHARS:
            problems.add(name, f"the addresses are longer than {MAX_ADDRESS_LIST_CHARS} characters")

    subject = problems.header_text("subject", fields.subject, MAX_SUBJECT_CHARS)
    if fields.subject is None or not fields.subject.strip():
        problems.add("subject", "is required")
    if not fields.html and not fields.text:
        problems.add("html", "html or text is required")
    for name, body in (("html", fields.html), ("text", fields.text)):
        if body and "\x00" in body:  # no mail may carry NUL (RFC 5322), nor PostgreSQL text
            problems.add(name, "must not contain NUL characters")

    sender = None
    if fields.from_email:
        parsed_sender = problems.addresses("from_email", fields.from_email, required=True)
        sender = parsed_sender[0] if parsed_sender else None
    from_name = problems.header_text("from_name", fields.from_name, MAX_NAME_CHARS)
    if sender is not None and from_name:
        # from_name wins over a display name given inside from_email ("Shop <shop@x.com>").
        sender = Address(sender.email, from_name)

    tags = tuple(fields.tags or ())
    if len(tags) > MAX_TAGS:
        problems.add("tags", f"at most {MAX_TAGS} tags")
    for index, tag in enumerate(tags):
        if not tag.strip() or len(tag) > MAX_TAG_CHARS:
            problems.add(f"tags.{index}", f"a tag has 1 to {MAX_TAG_CHARS} characters")
    metadata = dict(fields.metadata or {})
    if len(metadata) > MAX_METADATA_KEYS:
        problems.add("metadata", f"at most {MAX_METADATA_KEYS} keys")
    headers = problems.custom_headers(fields.headers) if fields.headers else ()
    if fields.list_unsubscribe:
        headers += problems.list_unsubscribe(fields.list_unsubscribe, headers)
    attachments = (
        problems.attachments(fields.attachments, bool(fields.html), max_attachment_bytes)
        if fields.attachments
        else ()
    )
    scheduled_at = None
    if fields.scheduled_at is not None:
        scheduled_at = problems.scheduled_at(fields.scheduled_at, now or utcnow())

    if problems.details:
        raise ValidationError("the message is invalid", details=problems.details)
    assert subject is not None
    return ValidMessage(
        to=to,
        subject=subject,
        html=fields.html or None,
        text=fields.text or None,
        sender=sender,
        from_name=from_name or None,
        reply_to=reply_to,
        cc=cc,
        bcc=bcc,
        tags=tags,
        metadata=metadata,
        track_opens=fields.track_opens,
        track_clicks=fields.track_clicks,
        headers=headers,
        attachments=attachments,
        scheduled_at=scheduled_at,
        ignored=tuple(fields.ignored),
    )


def validate_batch_item(
    item: Any,
    defaults: dict[str, Any],
    index: int,
    max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES,
    now: datetime | None = None,
) -> ValidMessage:
    """One item of a batch with the batch's ``defaults`` (``BatchFields.item_defaults``) filled
    in where the item sets nothing."""
    prefix = f"messages.{index}."
    if isinstance(item, MessageFields):  # parsed already (parse_batch)
        unset = {name: value for name, value in defaults.items() if getattr(item, name) is None}
        # The defaults were parsed as the same types as the item's fields.
        return validate_message(
            item.model_copy(update=unset) if unset else item, prefix, max_attachment_bytes, now
        )
    if not isinstance(item, dict):
        raise ValidationError(
            "the item is not a JSON object",
            details=[{"field": prefix.rstrip("."), "message": "must be an object"}],
        )
    merged = item
    if defaults:
        merged = dict(item)
        for name, value in defaults.items():
            if merged.get(name) is None:
                merged[name] = value
    try:
        fields = MessageFields.model_validate(merged)
    except PydanticValidationError as exc:
        raise ValidationError(
            "the item has invalid fields", details=field_errors(exc, prefix)
        ) from None
    return validate_message(fields, prefix, max_attachment_bytes, now)
