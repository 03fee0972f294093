"""Pipelined replies (RFC 2920): MAIL, every RCPT and DATA go out in one write, and their
replies are read together, however the server splits or joins them.

aiosmtplib reads one reply per command it sent and cannot do this, so while a transaction is
pipelined, ``PipelinedReplies`` stands in for its protocol on the same connection
(``SmtpClient._pipelined``); connecting, TLS, AUTH, RSET and QUIT stay aiosmtplib's.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence

import aiosmtplib

__all__ = ["MAX_REPLY_LENGTH", "RCPT_ACCEPTED", "PipelinedReplies", "refusals"]

MAX_REPLY_LENGTH = 32768  # bytes of one reply, continuation lines included
RCPT_ACCEPTED = (aiosmtplib.SMTPStatus.completed, aiosmtplib.SMTPStatus.will_forward)


def refusals(
    recipients: Sequence[str], answers: Sequence[aiosmtplib.SMTPResponse]
) -> list[aiosmtplib.SMTPRecipientRefused]:
    """The recipients whose RCPT was not accepted, with the server's reply to each."""
    return [
        aiosmtplib.SMTPRecipientRefused(answer.code, answer.message, recipient)
        for recipient, answer in zip(recipients, answers, strict=True)
        if answer.code not in RCPT_ACCEPTED
    ]


class PipelinedReplies(asyncio.Protocol):
    """Reads the replies to pipelined commands, however the server splits or joins them, while
    a transaction borrows the connection from aiosmtplib's protocol (``SmtpClient._pipelined``).

    A lost connection is passed on to that protocol, so that aiosmtplib knows of it too; so is
    the transport's flow control.
    """

    def __init__(self, smtp_protocol: asyncio.BaseProtocol) -> None:
        self._smtp_protocol = smtp_protocol
        self._buffer = bytearray()
        self._replies: deque[aiosmtplib.SMTPResponse] = deque()
        self._error: Exception | None = None
        self._waiter: asyncio.Future[None] | None = None

    async def next(self, timeout: float | None) -> aiosmtplib.SMTPResponse:  # noqa: ASYNC109
        """The next reply, waiting at most ``timeout`` seconds for it."""
        while not self._replies:
            if self._error is not None:
                raise self._error
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(self._waiter, timeout)
            except TimeoutError:
                raise aiosmtplib.SMTPReadTimeoutError(
                    "Timed out waiting for server response"
                ) from None
        return self._replies.popleft()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        try:
            while (reply := self._parse()) is not None:
                self._replies.append(reply)
        except aiosmtplib.SMTPResponseException as exc:
            self._error = exc
        self._wake()

    def _parse(self) -> aiosmtplib.SMTPResponse | None:
        """The first complete reply in the buffer (taken out of it), if there is one."""
        lines: list[bytes] = []
        offset = 0
        while (end := self._buffer.find(b"\n", offset)) != -1:
            line = bytes(self._buffer[offset : end + 1])
            offset = end + 1
            code = line[:3]
            if not code.isdigit() or line[3:4] not in (b" ", b"-", b"\r", b"\n"):
                raise aiosmtplib.SMTPResponseException(
                    aiosmtplib.SMTPStatus.invalid_response,
                    "Malformed SMTP response line: " + line.decode("utf-8", "replace"),
                )
            lines.append(line[4:].strip(b" \t\r\n"))
            if line[3:4] != b"-":
                del self._buffer[:offset]
                text = b"\n".join(lines).decode("utf-8", "surrogateescape")
                return aiosmtplib.SMTPResponse(int(code), text)
        if len(self._buffer) > MAX_REPLY_LENGTH:
            raise aiosmtplib.SMTPResponseException(
                aiosmtplib.SMTPStatus.invalid_response, "Response too long"
            )
        return None

    def eof_received(self) -> bool:
        return False  # the transport closes, and connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        if self._error is None:
            self._error = aiosmtplib.SMTPServerDisconnected("Connection lost")
            self._error.__cause__ = exc
        self._wake()
        self._smtp_protocol.connection_lost(exc)

    def pause_writing(self) -> None:
        self._smtp_protocol.pause_writing()

    def resume_writing(self) -> None:
        self._smtp_protocol.resume_writing()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
