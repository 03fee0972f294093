"""A real SMTP server (aiosmtpd, in-process) for tests to deliver to, and its pytest fixtures.

Async tests::

    async def test_sends(make_smtp_sink):
        sink = await make_smtp_sink(tls_mode="starttls", auth={"app": "secret"})
        transport = SmtpTransport(sink.endpoint(username="app", password="secret"))
        ...
        [received] = await sink.wait_for(1)

Synchronous or subprocess tests run the same server on a thread with its own event loop::

    with SmtpSink(tls_mode="tls") as sink:  # start_in_thread() / stop_thread()
        run_cli("--smtp-port", str(sink.port), "--ca-file", str(sink.ca_file))
        sink.wait_for_sync(1)

Behaviour controls (``data_replies``, ``rcpt_replies``, ``drop_on_mail``, ``drop_on_data``,
``delay_data``) are plain attributes and may be changed while the server runs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import email
import email.policy
import functools
import ssl
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

import pytest
import trustme
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session, TLSSetupException

from mailpass.providers.smtp import SmtpEndpoint

__all__ = [
    "DEFAULT_DATA_REPLY",
    "ReceivedMessage",
    "SmtpSink",
    "TlsMode",
    "default_ca",
    "make_smtp_sink",
    "make_threaded_smtp_sink",
    "smtp_ca",
    "smtp_ca_file",
    "smtp_sink",
]

TlsMode = Literal["none", "starttls", "tls"]

DEFAULT_DATA_REPLY = "250 2.0.0 OK"
SINK_HOSTNAME = "sink.mailpass.test"  # how the server names itself in its 220 greeting
CLIENT_HOSTNAME = "client.mailpass.test"  # EHLO name in endpoint(): no FQDN lookup per connect
ENDPOINT_TIMEOUT = 5.0  # seconds; endpoint() keeps a broken test from hanging for 30 s
WAIT_TIMEOUT = 5.0  # seconds wait_for() waits for messages before failing the test
THREAD_TIMEOUT = 10.0  # seconds to start or stop the server thread


@dataclass(frozen=True)
class ReceivedMessage:
    """One message the sink accepted (a 2xx reply to DATA)."""

    mail_from: str
    rcpt_tos: list[str]
    mail_options: list[str]  # MAIL FROM parameters: SIZE=..., BODY=8BITMIME
    data: bytes  # exactly as transmitted, after undoing dot-stuffing; lines end in CRLF
    message: EmailMessage
    tls: bool  # the session was encrypted (STARTTLS or implicit TLS)
    auth_username: str | None  # who authenticated in that session, if anyone
    received_at: float = field(default_factory=time.time)  # when DATA was accepted (epoch)


@functools.cache
def default_ca() -> trustme.CA:
    """The test CA every sink's certificate is issued by unless given another."""
    return trustme.CA()


class SmtpSink:
    """An SMTP server that records what it receives and misbehaves on request.

    Options:
        tls_mode: ``"none"``; ``"starttls"`` (offered, and required before AUTH, as real
            submission servers do); ``"tls"`` (implicit TLS). Certificate for ``cert_names``
            (default ``localhost`` and ``127.0.0.1``) from ``ca`` (default: ``default_ca()``).
        auth: user name -> password, for AUTH PLAIN and LOGIN; a wrong password gets 535.
            Without it the server does not offer AUTH.
        require_auth: refuse MAIL with 530 until the client has authenticated.
        data_replies: replies to the coming DATA commands, one each, e.g.
            ``["451 4.3.0 Try again later"]``; when used up, ``DEFAULT_DATA_REPLY``.
        rcpt_replies: recipient -> reply to RCPT TO, to refuse some recipients.
        drop_on_mail / drop_on_data: for that many coming MAIL / DATA commands, close the
            connection without replying (at DATA: after the whole message has arrived,
            the moment a client cannot tell whether it was delivered).
        delay_data: seconds to wait before replying to DATA; an accepted message is recorded
            before the wait (the server has queued it, it is just slow to confirm).
        on_accept: called (with no argument) once a message is recorded, before the reply:
            something that happens while the client waits for the server's 250.
        pipelining: offer PIPELINING in EHLO (RFC 2920), as real servers do; aiosmtpd takes
            pipelined commands either way, but does not offer it by itself.

    Recorded: ``messages``, ``connections_opened``, ``max_concurrent_connections``.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls_mode: TlsMode = "none",
        auth: dict[str, str] | None = None,
        require_auth: bool = False,
        data_replies: list[str] | None = None,
        rcpt_replies: dict[str, str] | None = None,
        drop_on_mail: int = 0,
        drop_on_data: int = 0,
        delay_data: float = 0.0,
        on_accept: Callable[[], None] | None = None,
        pipelining: bool = True,
        ca: trustme.CA | None = None,
        ca_file: Path | None = None,
        hostname: str = SINK_HOSTNAME,
        cert_names: tuple[str, ...] = ("localhost", "127.0.0.1"),
    ) -> None:
        if tls_mode not in ("none", "starttls", "tls"):
            raise ValueError(f"tls_mode must be none, starttls or tls, not {tls_mode!r}")
        self.host = host
        self.port = port  # the real one once started, if 0 was asked for
        self.tls_mode: TlsMode = tls_mode
        self.auth = auth
        self.require_auth = require_auth
        self.data_replies: list[str] = list(data_replies or [])
        self.rcpt_replies: dict[str, str] = dict(rcpt_replies or {})
        self.drop_on_mail = drop_on_mail
        self.drop_on_data = drop_on_data
        self.delay_data = delay_data
        self.on_accept = on_accept
        self.pipelining = pipelining
        self.ca = ca or default_ca()
        self.hostname = hostname
        self.cert_names = cert_names

        self.messages: list[ReceivedMessage] = []
        self.connections_opened = 0
        self.max_concurrent_connections = 0

        self._ca_file = ca_file
        self._ca_dir: tempfile.TemporaryDirectory[str] | None = None
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._live: set[_SinkSMTP] = set()
        # Messages are appended on the server's loop and awaited from tests on another thread
        # or loop: one lock, a condition for blocking waiters, futures for async ones.
        self._changed = threading.Condition()
        self._async_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._thread: threading.Thread | None = None
        self._thread_stop: asyncio.Event | None = None

    # -- running on the caller's event loop --------------------------------------------------

    async def start(self) -> Self:
        """Listen on the running event loop."""
        if self._server is not None:
            raise RuntimeError("this SmtpSink is already running")
        loop = asyncio.get_running_loop()
        self._loop = loop
        tls_context = self._server_tls_context() if self.tls_mode != "none" else None
        self._server = await loop.create_server(
            lambda: _SinkSMTP(self, tls_context, loop),
            host=self.host,
            port=self.port,
            ssl=tls_context if self.tls_mode == "tls" else None,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        """Stop listening and cut every open connection. ``start()`` may follow (same port)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        # Let each session's task see its connection go, so none is left pending.
        tasks = [p.handler_task for p in self._live if p.handler_task is not None]
        self._disconnect_all()
        await server.wait_closed()
        if tasks:
            await asyncio.wait(tasks, timeout=THREAD_TIMEOUT)
        if self._ca_dir is not None:  # a restarted sink writes the file anew
            self._ca_dir.cleanup()
            self._ca_dir = None
            self._ca_file = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- running on a thread of its own ------------------------------------------------------

    def start_in_thread(self) -> Self:
        """Run on a background thread with its own event loop; returns once listening."""
        started: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=asyncio.run, args=(self._serve(started),), name="smtp-sink", daemon=True
        )
        self._thread.start()
        try:
            started.result(timeout=THREAD_TIMEOUT)
        except BaseException:
            self._thread.join(THREAD_TIMEOUT)
            self._thread = None
            raise
        return self

    def stop_thread(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        assert self._loop is not None
        assert self._thread_stop is not None
        self._loop.call_soon_threadsafe(self._thread_stop.set)
        thread.join(THREAD_TIMEOUT)
        if thread.is_alive():
            raise RuntimeError("the SMTP sink thread did not stop")

    def __enter__(self) -> Self:
        return self.start_in_thread()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_thread()

    async def _serve(self, started: concurrent.futures.Future[None]) -> None:
        self._thread_stop = asyncio.Event()
        try:
            await self.start()
        except BaseException as exc:
            started.set_exception(exc)
            return
        started.set_result(None)
        try:
            await self._thread_stop.wait()
        finally:
            await self.stop()

    # -- what tests look at ------------------------------------------------------------------

    @property
    def ca_file(self) -> Path:
        """PEM of the CA behind the server's certificate, for a client's ``ca_file``."""
        if self._ca_file is None:
            self._ca_dir = tempfile.TemporaryDirectory(prefix="smtp-sink-")
            self._ca_file = Path(self._ca_dir.name) / "ca.pem"
            self.ca.cert_pem.write_to_path(str(self._ca_file))
        return self._ca_file

    @property
    def current_connections(self) -> int:
        return len(self._live)

    def endpoint(self, **overrides: Any) -> SmtpEndpoint:
        """An ``SmtpEndpoint`` for this server (no credentials unless given)."""
        settings: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "security": self.tls_mode,
            "timeout": ENDPOINT_TIMEOUT,
            "local_hostname": CLIENT_HOSTNAME,
            "ca_file": self.ca_file if self.tls_mode != "none" else None,
        }
        settings.update(overrides)
        return SmtpEndpoint(**settings)

    async def wait_for(self, count: int, timeout: float = WAIT_TIMEOUT) -> list[ReceivedMessage]:
        """Wait (from any event loop) until at least ``count`` messages were accepted."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            with self._changed:
                if len(self.messages) >= count:
                    return list(self.messages)
                waiter: asyncio.Future[None] = loop.create_future()
                self._async_waiters.append((loop, waiter))
            remaining = deadline - loop.time()
            try:
                await asyncio.wait_for(waiter, max(remaining, 0.0))
            except TimeoutError:
                raise TimeoutError(self._shortfall(count, timeout)) from None
            finally:
                with self._changed:
                    if (loop, waiter) in self._async_waiters:
                        self._async_waiters.remove((loop, waiter))

    def wait_for_sync(self, count: int, timeout: float = WAIT_TIMEOUT) -> list[ReceivedMessage]:
        """Blocking ``wait_for``, for synchronous tests while the sink runs on its thread."""
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not None and running is self._loop:
            raise RuntimeError("wait_for_sync() would block the sink's own loop; use wait_for()")
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.messages) >= count, timeout):
                raise TimeoutError(self._shortfall(count, timeout))
            return list(self.messages)

    async def disconnect_all(self) -> None:
        """Close every client connection now, as a server whose idle timer fired would."""
        if self._loop is asyncio.get_running_loop():
            self._disconnect_all()
        else:
            assert self._loop is not None
            future = asyncio.run_coroutine_threadsafe(self._async_disconnect_all(), self._loop)
            await asyncio.wrap_future(future)

    def disconnect_all_sync(self) -> None:
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(self._async_disconnect_all(), self._loop).result(
            THREAD_TIMEOUT
        )

    # -- called by the sessions --------------------------------------------------------------

    def _connection_made(self, protocol: _SinkSMTP) -> None:
        self._live.add(protocol)
        self.connections_opened += 1
        self.max_concurrent_connections = max(self.max_concurrent_connections, len(self._live))

    def _connection_lost(self, protocol: _SinkSMTP) -> None:
        self._live.discard(protocol)

    def _record(self, message: ReceivedMessage) -> None:
        with self._changed:
            self.messages.append(message)
            self._changed.notify_all()
            waiters, self._async_waiters = self._async_waiters, []
        for loop, waiter in waiters:
            with contextlib.suppress(RuntimeError):  # that waiter's loop has closed meanwhile
                loop.call_soon_threadsafe(_wake, waiter)

    def _shortfall(self, count: int, timeout: float) -> str:
        return f"expected {count} message(s) within {timeout:g} s, got {len(self.messages)}"

    def _disconnect_all(self) -> None:
        for protocol in list(self._live):
            protocol.abort()

    async def _async_disconnect_all(self) -> None:
        self._disconnect_all()

    def _server_tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert(*self.cert_names).configure_cert(context)
        return context


class _Handler:
    """aiosmtpd's hooks, acting on the sink's current settings.

    (Not the sink itself: aiosmtpd looks through its handler's attributes, properties too.)
    """

    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname  # aiosmtpd leaves this to a handler that has the hook
        if self.sink.pipelining:
            responses = [responses[0], "250-PIPELINING", *responses[1:]]
        if self.sink.auth is None:
            return [line for line in responses if not line[4:].upper().startswith("AUTH")]
        return responses

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.sink.drop_on_mail > 0:
            self.sink.drop_on_mail -= 1
            await _hang_up(server)
        if self.sink.require_auth and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.sink.rcpt_replies:
            return self.sink.rcpt_replies[address]
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.sink.drop_on_data > 0:
            self.sink.drop_on_data -= 1
            await _hang_up(server)
        reply = self.sink.data_replies.pop(0) if self.sink.data_replies else DEFAULT_DATA_REPLY
        if reply.startswith("2"):
            data = envelope.original_content or b""
            transport = server.transport
            self.sink._record(
                ReceivedMessage(
                    mail_from=envelope.mail_from or "",
                    rcpt_tos=list(envelope.rcpt_tos),
                    mail_options=list(envelope.mail_options),
                    data=data,
                    message=email.message_from_bytes(data, policy=email.policy.default),
                    tls=transport is not None
                    and transport.get_extra_info("ssl_object") is not None,
                    auth_username=session.auth_data if session.authenticated else None,
                )
            )
            if self.sink.on_accept is not None:
                self.sink.on_accept()
        if self.sink.delay_data:
            # After recording: a server that has queued the message but is slow to say so,
            # the case where a client that gives up cannot know whether the mail went out.
            await asyncio.sleep(self.sink.delay_data)
        return reply

    async def handle_exception(self, error: Exception) -> str:
        if isinstance(error, TLSSetupException):
            return ""  # a client refusing our certificate is a scenario tests set up on purpose
        raise error  # anything else is a bug in the sink: let aiosmtpd log it loudly

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if self.sink.auth is not None and isinstance(data, LoginPassword):
            username = data.login.decode("utf-8", "replace")
            if self.sink.auth.get(username) == data.password.decode("utf-8", "replace"):
                return AuthResult(success=True, auth_data=username)
        return AuthResult(success=False, handled=False)


class _SinkSMTP(SMTP):
    """One session; reports its connection coming and going to the sink."""

    def __init__(
        self, sink: SmtpSink, tls_context: ssl.SSLContext | None, loop: asyncio.AbstractEventLoop
    ) -> None:
        handler = _Handler(sink)
        super().__init__(
            handler,
            hostname=sink.hostname,
            ident="MailPass test sink",
            tls_context=tls_context if sink.tls_mode == "starttls" else None,
            # AUTH needs encryption first, except where the whole session is encrypted already
            # (aiosmtpd cannot tell implicit TLS apart) or where there is no TLS to be had.
            auth_require_tls=sink.tls_mode == "starttls",
            authenticator=handler.authenticate,
            loop=loop,
        )
        self.sink = sink

    @property
    def handler_task(self) -> asyncio.Task[None] | None:
        return self._handler_coroutine

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self.transport is None  # it is called again once STARTTLS completes
        super().connection_made(transport)
        if first:
            self.sink._connection_made(self)

    def connection_lost(self, error: Exception | None) -> None:
        super().connection_lost(error)
        self.sink._connection_lost(self)

    def abort(self) -> None:
        if isinstance(self.transport, asyncio.Transport):
            self.transport.abort()


async def _hang_up(server: SMTP) -> None:
    """Close the connection without a reply and never return: the session task is cancelled."""
    assert isinstance(server.transport, asyncio.Transport)
    server.transport.abort()
    await asyncio.Event().wait()


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def smtp_ca() -> trustme.CA:
    """The CA behind every sink's certificate."""
    return default_ca()


@pytest.fixture(scope="session")
def smtp_ca_file(smtp_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``smtp_ca`` as a PEM file, for ``SmtpEndpoint.ca_file`` or a subprocess's settings."""
    path = tmp_path_factory.mktemp("smtp-ca") / "ca.pem"
    smtp_ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
async def make_smtp_sink(
    smtp_ca: trustme.CA, smtp_ca_file: Path
) -> AsyncIterator[Callable[..., Awaitable[SmtpSink]]]:
    """``await make_smtp_sink(**options)``: a started ``SmtpSink``, stopped after the test."""
    sinks: list[SmtpSink] = []

    async def make(**options: Any) -> SmtpSink:
        options.setdefault("ca", smtp_ca)
        options.setdefault("ca_file", smtp_ca_file)
        sink = await SmtpSink(**options).start()
        sinks.append(sink)
        return sink

    yield make
    for sink in reversed(sinks):
        await sink.stop()


@pytest.fixture
async def smtp_sink(make_smtp_sink: Callable[..., Awaitable[SmtpSink]]) -> SmtpSink:
    """A plain-text sink accepting everything, on the test's event loop."""
    return await make_smtp_sink()


@pytest.fixture
def make_threaded_smtp_sink(
    smtp_ca: trustme.CA, smtp_ca_file: Path
) -> Iterator[Callable[..., SmtpSink]]:
    """``make_threaded_smtp_sink(**options)``: a sink on its own thread, for sync tests."""
    sinks: list[SmtpSink] = []

    def make(**options: Any) -> SmtpSink:
        options.setdefault("ca", smtp_ca)
        options.setdefault("ca_file", smtp_ca_file)
        sink = SmtpSink(**options).start_in_thread()
        sinks.append(sink)
        return sink

    yield make
    for sink in reversed(sinks):
        sink.stop_thread()
