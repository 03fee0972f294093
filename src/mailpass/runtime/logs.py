"""How a process logs: for people (``MAILPASS_LOG_FORMAT=text``, the default) or one JSON
object a line for a log collector (``json``): ``time`` (UTC), ``level``, ``logger``,
``message``, and what the line was about when known: the API request's ``request_id`` (its
``X-Request-Id``), the ``message_id`` being sent, an ``exception``'s traceback.

Secrets never reach a log line: API keys are looked up by their hash, provider passwords are
decrypted only into the SMTP client, and the SMTP transcripts hide AUTH.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

__all__ = ["MESSAGE_ID", "REQUEST_ID", "JsonFormatter", "configure_logging"]

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
MESSAGE_ID: ContextVar[str | None] = ContextVar("message_id", default=None)
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
# uvicorn's loggers: with JSON, their lines go through the root's handler like every other.
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or REQUEST_ID.get()
        if request_id:
            line["request_id"] = request_id
        message_id = getattr(record, "message_id", None) or MESSAGE_ID.get()
        if message_id:
            line["message_id"] = message_id
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        return orjson.dumps(line).decode()


def configure_logging(level: str, log_format: str) -> None:
    """The root logger's one handler, to standard error, in ``log_format`` (text or json)."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
        for name in UVICORN_LOGGERS:
            uvicorn_logger = logging.getLogger(name)
            uvicorn_logger.handlers.clear()
            uvicorn_logger.propagate = True
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Migrations that ran are worth a line at most; alembic narrates every step at INFO.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd, in `mailpass dev`
