"""Dashboard > Messages: the filtered, paginated log, one message's details, its html preview."""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mailpass.core.statuses import MessageStatus
from mailpass.core.stored import attached_content, mail_of
from mailpass.dashboard.context import Account, PageNotFound, checked_form, services_of
from mailpass.dashboard.notices import notice_of
from mailpass.dashboard.templating import PAGE_HEADERS, render
from mailpass.errors import NotCancellable
from mailpass.messages import log as message_log
from mailpass.messages.models import MessageFilter
from mailpass.messages.results import MessageRecord

__all__ = ["PREVIEW_CSP", "router"]

router = APIRouter(prefix="/dashboard/messages")

PAGE_SIZE = 50  # messages per page of the log
STATUSES = tuple(MessageStatus)
MAX_FILTER_LENGTH = 320  # characters of a tag or recipient filter
# The html of a message is someone else's content: it is served with a policy that runs no
# script, submits no form and loads nothing from the network. Remote images stay off on
# purpose: loading them would fetch tracking pixels (recording an "open" by the dashboard's
# user) and tell senders' image hosts who looks at the log. ``sandbox`` gives the document an
# origin of its own, so even a CSP bug could not reach the dashboard's cookies or pages.
PREVIEW_CSP = (
    "sandbox; default-src 'none'; img-src data: cid:; style-src 'unsafe-inline'; "
    "font-src data:; frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
)


@dataclass
class LogQuery:
    """The log's filters as given in the URL, with a message per field that is wrong."""

    values: dict[str, str]
    errors: dict[str, str]
    conditions: MessageFilter
    page: int

    def link(self, page: int) -> str:
        """The log's URL with these filters, at ``page``."""
        params = {name: value for name, value in self.values.items() if value}
        if page > 1:
            params["page"] = str(page)
        return "/dashboard/messages" + (f"?{urlencode(params)}" if params else "")


def _day(query: LogQuery, name: str) -> date | None:
    raw = query.values.get(name, "")
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        query.errors[name] = "must be a date like 2026-01-30"
        return None


def parse_log_query(request: Request) -> LogQuery:
    params = request.query_params
    names = ("status", "tag", "recipient", "since", "until")
    query = LogQuery(
        values={name: params.get(name, "").strip() for name in names},
        errors={},
        conditions=MessageFilter(),
        page=1,
    )
    status = query.values["status"]
    if status and status not in STATUSES:
        query.errors["status"] = f"must be one of {', '.join(STATUSES)}"
    for name in ("tag", "recipient"):
        if len(query.values[name]) > MAX_FILTER_LENGTH:
            query.errors[name] = f"must be at most {MAX_FILTER_LENGTH} characters"
    raw_page = params.get("page", "1").strip()
    if raw_page.isdigit() and int(raw_page) >= 1:
        query.page = int(raw_page)
    else:
        query.errors["page"] = "must be a whole number from 1 up"
    since, until = _day(query, "since"), _day(query, "until")
    if since and until and since > until:
        query.errors["until"] = "must not be before the start date"
    if not query.errors:
        query.conditions = MessageFilter(
            status=status or None,
            tag=query.values["tag"] or None,
            recipient=query.values["recipient"] or None,
            since=since,
            until=until,
        )
    return query


@router.get("")
async def log_page(request: Request, account: Account) -> Response:
    query = parse_log_query(request)
    rows: list[Any] = []
    has_next = False
    if not query.errors:
        found = await message_log.list_messages(
            services_of(request).database,
            account.user_id,
            query.conditions,
            limit=PAGE_SIZE + 1,  # one more tells whether there is a next page
            offset=(query.page - 1) * PAGE_SIZE,
        )
        rows, has_next = list(found[:PAGE_SIZE]), len(found) > PAGE_SIZE
    return render(
        request,
        "messages.html",
        {
            "query": query,
            "rows": rows,
            "statuses": STATUSES,
            "has_next": has_next,
            "page_size": PAGE_SIZE,
        },
        status_code=400 if query.errors else 200,
    )


def header_lines(message: Mapping[Any, Any]) -> list[tuple[str, str]]:
    """The mail's headers as sent, or to be sent (Bcc is never among them: it lives in the
    envelope only). Most messages are stored as their columns and composed here
    (``mailpass.core.stored``)."""
    try:
        raw = mail_of(message)
    except ValueError:
        return []  # columns that compose no mail (the worker fails such a message)
    parsed = email.parser.BytesHeaderParser(policy=email.policy.default).parsebytes(raw)
    return [(name, str(value)) for name, value in parsed.items()]


@router.get("/{message_pk:int}")
async def detail_page(request: Request, account: Account, message_pk: int) -> Response:
    detail = await message_log.message_detail(
        services_of(request).database, account.user_id, message_pk
    )
    if detail is None:
        raise PageNotFound(f"no message {message_pk}")
    message, events, provider = detail.message, detail.events, detail.provider
    return render(
        request,
        "message.html",
        {
            "message": message,
            "headers": header_lines(message),
            "events": events,
            "provider": provider,
            "provider_names": REPORTERS,
            "notice": notice_of(request),
        },
    )


# Who reported an event, by the provider kind its ``data`` names.
REPORTERS = {"ses": "Amazon SES", "sendgrid": "SendGrid", "mailgun": "Mailgun"}


@router.post("/{message_pk:int}/cancel")
async def cancel(request: Request, account: Account, message_pk: int) -> Response:
    """Take a queued (or scheduled) message out of the queue, as the API's cancel does."""
    await checked_form(request, account.csrf_token)
    services = services_of(request)
    message = await message_log.find_message(services.database, account.user_id, message_pk)
    if message is None:
        raise PageNotFound(f"no message {message_pk}")
    notice = "message-cancelled"
    try:
        await services.mail.cancel(MessageRecord.of(dict(message)))
    except NotCancellable:
        notice = "message-not-cancellable"
    return RedirectResponse(f"/dashboard/messages/{message_pk}?notice={notice}", status_code=303)


@router.get("/{message_pk:int}/preview")
async def html_preview(request: Request, account: Account, message_pk: int) -> Response:
    """The message's html as it was sent, for the sandboxed frame of the detail page."""
    message = await message_log.find_message(
        services_of(request).database, account.user_id, message_pk
    )
    if message is None or not message["html"]:
        raise PageNotFound(f"no html for message {message_pk}")
    headers = {
        **PAGE_HEADERS,
        "Content-Security-Policy": PREVIEW_CSP,
        "X-Frame-Options": "SAMEORIGIN",
    }
    return Response(message["html"], media_type="text/html", headers=headers)


@router.get("/{message_pk:int}/attachments/{index:int}")
async def attachment_download(
    request: Request, account: Account, message_pk: int, index: int
) -> Response:
    """One of the message's files, as it was sent. Always a download of opaque bytes: an html
    or svg file served as itself would run its scripts on the dashboard's origin."""
    message = await message_log.find_message(
        services_of(request).database, account.user_id, message_pk
    )
    listed = (message["attachments"] or []) if message is not None else []
    if message is None or not 0 <= index < len(listed) or message["raw"] is None:
        raise PageNotFound(f"no attachment {index} of message {message_pk}")
    # A mail of megabytes takes a while to parse: not on the event loop.
    content = await asyncio.to_thread(attached_content, message["raw"], listed, index)
    if content is None:
        raise PageNotFound(f"no attachment {index} of message {message_pk}")
    filename: str = listed[index]["filename"]
    fallback = filename.encode("ascii", "replace").decode().replace('"', "_").replace("\\", "_")
    headers = {
        **PAGE_HEADERS,
        "Content-Disposition": (
            f"attachment; filename=\"{fallback}\"; filename*=utf-8''{quote(filename, safe='')}"
        ),
    }
    return Response(content, media_type="application/octet-stream", headers=headers)
