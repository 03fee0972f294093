"""What went wrong talking to an SMTP server, and whether it is worth trying again.

Every failure is described twice: ``reply`` for the message's record (the server's
``"550 5.1.1 ..."`` when it said something, otherwise a short description such as "connection
refused by smtp.example.com:587") and ``summary`` for a one-line CLI error::

    4xx reply, timeout, refused/reset/dropped connection   transient
    5xx reply, authentication refused, TLS verification,   permanent
    STARTTLS or AUTH not offered, unusable address
"""

from __future__ import annotations

import errno
import socket
import ssl
from typing import TYPE_CHECKING, TypeVar

import aiosmtplib

from mailpass.providers.smtp.errors import (
    SmtpConnectionFailure,
    SmtpFailure,
    SmtpReplyFailure,
    SmtpTimeoutFailure,
    config_failure,
)

if TYPE_CHECKING:
    from mailpass.providers.smtp.endpoint import SmtpEndpoint

__all__ = [
    "classify_failure",
    "find_cause",
    "is_dead_connection",
    "recipients_failure",
    "reply_text",
    "socket_error",
]

_E = TypeVar("_E", bound=BaseException)

# What the CLI calls each step when it failed: "authentication failed: 535 ...".
STEP_NAMES = {
    "connect": "connection",
    "EHLO": "EHLO",
    "STARTTLS": "STARTTLS",
    "AUTH": "authentication",
    "MAIL": "sending",
    "DATA": "DATA",
}


def is_dead_connection(exc: BaseException) -> bool:
    # 421: the server is closing this session (e.g. its idle timer) and says so.
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return exc.code == aiosmtplib.SMTPStatus.domain_unavailable
    return isinstance(exc, ConnectionError)


def reply_text(code: int, message: str) -> str:
    text = " ".join(line.strip() for line in message.splitlines() if line.strip())
    return f"{code} {text}" if text else str(code)


def recipients_failure(exc: BaseException) -> SmtpFailure | None:
    """Every recipient refused: transient only if every refusal was temporary (4xx)."""
    if not isinstance(exc, aiosmtplib.SMTPRecipientsRefused) or not exc.recipients:
        return None
    refusals = exc.recipients
    transient = all(400 <= refusal.code < 500 for refusal in refusals)
    deciding = next(r for r in refusals if transient or not 400 <= r.code < 500)
    if len(refusals) == 1:
        reply = reply_text(deciding.code, deciding.message)
    else:
        reply = "; ".join(f"{r.recipient}: {reply_text(r.code, r.message)}" for r in refusals)
    return SmtpReplyFailure(
        reply=reply,
        summary=f"all recipients refused: {reply}",
        transient=transient,
        smtp_code=deciding.code,
    )


def classify_failure(exc: BaseException, endpoint: SmtpEndpoint, step: str) -> SmtpFailure:
    """Turn what aiosmtplib (or the socket below it) raised during ``step`` into a failure."""
    address = endpoint.address
    cert_error = find_cause(exc, ssl.SSLCertVerificationError)
    if cert_error is not None:
        reason = cert_error.verify_message or cert_error.reason or str(cert_error)
        return config_failure(f"TLS certificate verify failed for {endpoint.host}: {reason}")
    if (
        isinstance(exc, aiosmtplib.SMTPResponseException)
        and exc.code == aiosmtplib.SMTPStatus.invalid_response
    ):
        # Something answered that is not SMTP (SSH, a database, a web server). What it said is
        # not shown: a provider's settings must not become a way to read other services'
        # banners from inside the network.
        return config_failure(f"{address} did not answer as an SMTP server")
    if isinstance(exc, aiosmtplib.SMTPResponseException) and exc.code > 0:
        reply = reply_text(exc.code, exc.message)
        return SmtpReplyFailure(
            reply=reply,
            summary=f"{STEP_NAMES.get(step, step)} failed: {reply}",
            # 4xx is temporary by definition; anything else that is not 5xx is a confused
            # server, which is more likely to recover than a configuration is to fix itself.
            transient=not 500 <= exc.code < 600,
            smtp_code=exc.code,
        )
    ssl_error = find_cause(exc, ssl.SSLError)
    if ssl_error is not None:
        # A handshake failing outright is a configuration mismatch, e.g. "tls" on a STARTTLS port.
        reason = ssl_error.reason.lower().replace("_", " ") if ssl_error.reason else str(ssl_error)
        return config_failure(f"TLS handshake with {address} failed: {reason}")
    if isinstance(exc, TimeoutError):
        if step == "connect":
            waited = endpoint.connect_timeout
            reply = f"timed out connecting to {address} after {waited:g} s"
            summary = f"cannot connect to {address}: timed out after {waited:g} s"
        else:
            reply = f"{address} did not answer {step} within {endpoint.timeout:g} s"
            summary = reply
        return SmtpTimeoutFailure(reply=reply, summary=summary, transient=True)
    if step == "connect":
        os_error = socket_error(exc)
        if isinstance(os_error, socket.gaierror):
            reason = f"cannot resolve {endpoint.host} ({os_error.strerror})"
        elif isinstance(os_error, ConnectionRefusedError) or (
            os_error is not None and os_error.errno == errno.ECONNREFUSED
        ):
            return SmtpConnectionFailure(
                reply=f"connection refused by {address}",
                summary=f"cannot connect to {address}: connection refused",
                transient=True,
            )
        elif isinstance(exc, aiosmtplib.SMTPServerDisconnected) or os_error is None:
            reason = "the server closed the connection before greeting"
        else:
            reason = os_error.strerror or str(os_error)
        return SmtpConnectionFailure(
            reply=f"cannot connect to {address}: {reason}",
            summary=f"cannot connect to {address}: {reason}",
            transient=True,
        )
    if isinstance(exc, ConnectionError):
        reply = f"{address} closed the connection during {step}"
        return SmtpConnectionFailure(reply=reply, summary=reply, transient=True)
    if isinstance(exc, OSError):
        reply = f"connection to {address} failed during {step}: {exc.strerror or exc}"
        return SmtpConnectionFailure(reply=reply, summary=reply, transient=True)
    if isinstance(exc, ValueError):
        # aiosmtplib refuses addresses it cannot put on the wire (line breaks, non-ASCII).
        return config_failure(f"cannot send to this address: {exc}")
    # SMTPNotSupported and the like: the server lacks something this message needs.
    message = exc.message if isinstance(exc, aiosmtplib.SMTPException) else str(exc)
    return config_failure(f"{address}: {message}")


def find_cause(exc: BaseException, kind: type[_E]) -> _E | None:
    """The first exception of ``kind`` in ``exc``'s chain of causes, ``exc`` included."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def socket_error(exc: BaseException) -> OSError | None:
    """The operating system's error under aiosmtplib's wrappers (which are OSErrors too)."""
    current: BaseException | None = exc
    for _ in range(10):  # chains are short; the bound only guards against cycles
        if current is None:
            return None
        if isinstance(current, OSError) and not isinstance(current, aiosmtplib.SMTPException):
            return current
        current = current.__cause__ or current.__context__
    return None
