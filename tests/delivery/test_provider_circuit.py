"""A provider that stops answering: fair places, its circuit breaker, held mail, the probe.

Real parts: aiosmtpd sinks, a TCP front that hangs (accepts, never greets) or passes through
to a sink, the real API and worker, SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from mailpass.clock import utcnow
from mailpass.providers.circuit import CircuitPolicy
from mailpass.providers.kinds import resolve_connection
from mailpass.providers.models import Health
from mailpass.storage.tables import messages, providers
from tcp_fixtures import pipe

ITEM = {"to": "user@example.com", "subject": "Hello", "text": "Hi"}


class HangingFront:
    """127.0.0.1:``port`` in front of an SMTP sink: passing through, or, once ``hang()``,
    accepting connections and never saying a word (a provider's server that is wedged)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.hanging = False
        self.port = 0
        self.connections = 0  # accepted while hanging
        self._server: asyncio.Server | None = None
        self._held: set[asyncio.StreamWriter] = set()

    async def start(self) -> HangingFront:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def hang(self) -> None:
        self.hanging = True

    def answer(self) -> None:
        self.hanging = False

    async def close(self) -> None:
        for writer in list(self._held):
            writer.transport.abort()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.hanging:
            self.connections += 1
            self._held.add(writer)
            with contextlib.suppress(Exception):
                await reader.read()  # until the client gives up
            self._held.discard(writer)
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@pytest.fixture
async def hanging_front(smtp_sink):
    fronts: list[HangingFront] = []

    async def make(sink=smtp_sink) -> HangingFront:  # type: ignore[no-untyped-def]
        front = await HangingFront(sink.port).start()
        fronts.append(front)
        return front

    yield make
    for front in fronts:
        await front.close()


@pytest.fixture
def quick_circuit(settings):
    """Connections given up after 0.5 s; a provider down for 30 s at first (the tests move it
    on by hand where they need to)."""
    settings.smtp_connect_timeout = 0.5
    settings.smtp_timeout = 2.0
    settings.provider_failure_threshold = 3
    settings.provider_down_first = 30.0
    settings.provider_down_most = 600.0
    settings.queue_poll_interval = 0.05
    return settings


async def provider_health(database, provider_id: int) -> Health:  # type: ignore[no-untyped-def]
    async with database.read() as connection:
        row = (
            await connection.execute(
                sa.select(
                    providers.c.failure_streak,
                    providers.c.down_count,
                    providers.c.down_until,
                    providers.c.down_reason,
                ).where(providers.c.id == provider_id)
            )
        ).one()
    return Health(*row)


async def end_pause(database, provider_id: int) -> None:  # type: ignore[no-untyped-def]
    """The provider's pause is over now (as if its 30 s had passed)."""
    past = utcnow() - timedelta(seconds=1)
    async with database.transaction() as connection:
        await connection.execute(
            providers.update().where(providers.c.id == provider_id).values(down_until=past)
        )
        # What it held is due as well, as it would be by then.
        await connection.execute(
            messages.update()
            .where(messages.c.provider_id == provider_id, messages.c.status == "queued")
            .values(next_attempt_at=past)
        )


# ---------------------------------------------------------------------- the policy alone

NOW = datetime(2026, 1, 30, 12, 0, 0)


def test_a_provider_is_marked_down_after_the_threshold_and_its_pause_doubles_to_the_longest():
    policy = CircuitPolicy(threshold=3, first_pause=30, longest_pause=600)
    health = policy.after_failures(Health(), 2, "timed out", NOW, probe=False)
    assert health == Health(2, 0, None, None)  # not yet
    health = policy.after_failures(health, 1, "timed out", NOW, probe=False)
    assert health == Health(3, 1, NOW + timedelta(seconds=30), "timed out")
    # Attempts already on their way when it went down count, but do not lengthen the pause.
    late = policy.after_failures(health, 5, "refused", NOW + timedelta(seconds=1), probe=False)
    assert late.down_until == NOW + timedelta(seconds=30)
    assert late.down_count == 1
    # Each failed probe doubles the pause, up to the longest.
    pauses = []
    for _ in range(7):
        later = health.down_until
        assert later is not None
        health = policy.after_failures(health, 1, "still out", later, probe=True)
        assert health.down_until is not None
        pauses.append((health.down_until - later).total_seconds())
    assert pauses == [60, 120, 240, 480, 600, 600, 600]
    assert health.down_reason == "still out"


def test_the_pause_never_overflows():
    policy = CircuitPolicy(threshold=1, first_pause=30, longest_pause=600)
    assert policy.pause(10_000) == timedelta(seconds=600)


# ---------------------------------------------------------------------- the worker


async def test_a_hung_provider_holds_neither_the_other_providers_mail_nor_its_places(
    quick_circuit, make_account, smtp_sink, make_smtp_sink, hanging_front, queue_batch, app_client
):
    services = app_client.app.state.services
    front = await hanging_front()
    front.hang()
    hung = await make_account("hung@example.com", sink=front)
    healthy_sink = await make_smtp_sink()
    healthy = await make_account("healthy@example.com", sink=healthy_sink)
    # The hung provider's mail is older and more than the worker's places.
    await queue_batch(hung, [{**ITEM, "to": f"h{i}@example.com"} for i in range(40)])
    await queue_batch(healthy, [{**ITEM, "to": f"ok{i}@example.com"} for i in range(30)])

    worker = services.worker(concurrency=16)
    running = asyncio.create_task(worker.run())
    started = time.monotonic()
    try:
        # Before the hung provider's first connection even times out (0.5 s): it holds half of
        # the places at most, and the claim looks past its mail for the other's.
        await healthy_sink.wait_for(30, timeout=10)
        first_mail_took = time.monotonic() - started
        # Three timeouts in a row: it is marked down, for every process.
        deadline = time.monotonic() + 10
        while (await provider_health(services.database, hung.provider.id)).down_until is None:
            assert time.monotonic() < deadline, "never marked down"
            await asyncio.sleep(0.05)
        marked_after = time.monotonic() - started
        # Its messages all go back to waiting, without a place held, and without counting an
        # attempt for those that never tried.
        deadline = time.monotonic() + 10
        while worker._in_flight:  # the places it holds
            assert time.monotonic() < deadline, "sends of a down provider kept their places"
            await asyncio.sleep(0.05)
    finally:
        worker.stop()
        await running
    # The next claim, by any worker, finds it down: whatever of its mail is due waits too.
    await services.worker(concurrency=16).run(until_idle=True)
    health = await provider_health(services.database, hung.provider.id)
    assert health.down_count == 1
    assert health.down_reason == f"timed out connecting to 127.0.0.1:{front.port} after 0.5 s"
    assert health.down_until is not None
    assert timedelta(seconds=25) < health.down_until - utcnow() <= timedelta(seconds=30)

    async with services.database.read() as connection:
        rows = (
            await connection.execute(
                sa.select(
                    messages.c.status,
                    messages.c.attempts,
                    messages.c.next_attempt_at,
                    messages.c.held_reason,
                ).where(messages.c.provider_id == hung.provider.id)
            )
        ).all()
    assert {row.status for row in rows} == {"queued"}
    attempted = [row for row in rows if row.attempts]
    # Only the sends that got a connection tried (the pool's 4, a few more at most).
    assert 3 <= len(attempted) <= 8, [row.attempts for row in rows]
    held = [row for row in rows if row.held_reason]
    assert len(held) >= 40 - len(attempted)
    assert all(row.next_attempt_at >= health.down_until - timedelta(seconds=1) for row in held)
    print(
        f"healthy provider's 30 messages in {first_mail_took:.2f} s; hung one marked down "
        f"after {marked_after:.2f} s, {len(attempted)} attempts made"
    )


async def test_status_says_why_a_message_is_held_and_send_refuses_at_once(
    quick_circuit, make_account, hanging_front, queue_batch, drain, status_of, app_client
):
    services = app_client.app.state.services
    front = await hanging_front()
    front.hang()
    account = await make_account(sink=front)
    await queue_batch(account, [{**ITEM, "to": f"u{i}@example.com"} for i in range(6)])
    assert await drain(timeout=5) == 6  # it cannot go: all six wait
    health = await provider_health(services.database, account.provider.id)
    assert health.down_until is not None
    # Mail queued while it is down is held, never attempted, and says why and until when.
    data = await queue_batch(account, [{**ITEM, "to": f"v{i}@example.com"} for i in range(3)])
    assert await drain(timeout=1) == 9
    held = [await status_of(account, item["message_id"]) for item in data["messages"]]
    for message in held:
        assert message["status"] == "queued"
        assert message["attempts"] == 0
        assert message["held_reason"].startswith("provider 'primary' is down until ")
        assert "timed out connecting to" in message["held_reason"]
        assert message["next_attempt_at"] is not None

    started = time.monotonic()
    response = await app_client.post("/api/v1/mail/send", json=ITEM, headers=account.headers)
    took = time.monotonic() - started
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "SEND_FAILED"
    assert error["message"].startswith("provider 'primary' is down until ")
    [details] = error["details"]
    assert details["provider"] == "primary"
    assert details["provider_state"] == "down"
    assert details["reason"] == health.down_reason
    assert 1 <= int(response.headers["Retry-After"]) <= 30
    assert took < 0.4  # at once: not after a connect timeout (0.5 s)
    assert front.connections <= 8  # the refused /send opened no connection


async def test_the_probe_brings_a_provider_back_and_its_held_mail_goes_at_once(
    quick_circuit, make_account, smtp_sink, hanging_front, queue_batch, drain, status_of, app_client
):
    services = app_client.app.state.services
    front = await hanging_front()
    front.hang()
    account = await make_account(sink=front)
    data = await queue_batch(account, [{**ITEM, "to": f"u{i}@example.com"} for i in range(10)])
    assert await drain(timeout=5) == 10
    assert (await provider_health(services.database, account.provider.id)).down_count == 1

    # Its pause over and still hanging: one probe, which fails, and the pause doubles.
    await end_pause(services.database, account.provider.id)
    before = front.connections
    assert await drain(timeout=3) == 10
    health = await provider_health(services.database, account.provider.id)
    assert front.connections - before == 1  # one message tried it, no more
    assert health.down_count == 2
    assert health.down_until is not None
    assert timedelta(seconds=55) < health.down_until - utcnow() <= timedelta(seconds=60)

    # It answers again: the probe goes, and with it everything it held.
    front.answer()
    await end_pause(services.database, account.provider.id)
    assert await drain(timeout=10) == 0
    await smtp_sink.wait_for(10)
    assert await provider_health(services.database, account.provider.id) == Health()
    for item in data["messages"]:
        message = await status_of(account, item["message_id"])
        assert message["status"] == "sent"
        assert message["held_reason"] is None


async def test_send_through_a_provider_that_stops_answering_marks_it_down(
    quick_circuit, make_account, hanging_front, app_client
):
    services = app_client.app.state.services
    front = await hanging_front()
    front.hang()
    account = await make_account(sink=front)
    for attempt in range(3):
        response = await app_client.post("/api/v1/mail/send", json=ITEM, headers=account.headers)
        assert response.status_code == 500
        assert "timed out connecting" in response.json()["error"]["message"], attempt
    health = await provider_health(services.database, account.provider.id)
    assert (health.failure_streak, health.down_count) == (3, 1)
    response = await app_client.post("/api/v1/mail/send", json=ITEM, headers=account.headers)
    assert response.json()["error"]["details"][0]["provider_state"] == "down"


async def test_a_message_refused_for_itself_does_not_count_against_the_provider(
    quick_circuit, make_account, make_smtp_sink, queue_batch, drain, app_client
):
    """4xx and 5xx about one message (its mailbox, its content) are the message's trouble."""
    services = app_client.app.state.services
    sink = await make_smtp_sink(data_replies=["451 4.3.0 Try again later"] * 10)
    account = await make_account(sink=sink)
    await queue_batch(account, [{**ITEM, "to": f"u{i}@example.com"} for i in range(5)])
    await drain(timeout=2)
    assert await provider_health(services.database, account.provider.id) == Health()


async def test_editing_a_down_providers_settings_brings_it_back_at_once(
    quick_circuit, make_account, smtp_sink, hanging_front, queue_batch, drain, app_client
):
    """The settings it failed with are gone: its held mail goes to the new server now, not
    after the pause."""
    from mailpass.providers import service as providers_service

    services = app_client.app.state.services
    front = await hanging_front()
    front.hang()
    account = await make_account(sink=front)
    await queue_batch(account, [{**ITEM, "to": f"u{i}@example.com"} for i in range(5)])
    assert await drain(timeout=3) == 5
    assert (await provider_health(services.database, account.provider.id)).down_until
    # Mail queued while it is down is held (the claim sees it down): never attempted.
    await queue_batch(account, [{**ITEM, "to": f"v{i}@example.com"} for i in range(2)])
    assert await drain(timeout=1) == 7

    provider = await providers_service.own_provider(
        services.database, account.provider.id, account.user.id
    )
    assert provider is not None
    settings = resolve_connection("smtp", host="127.0.0.1", port=smtp_sink.port, security="none")
    await providers_service.point_at(services.database, provider, settings)
    assert await provider_health(services.database, account.provider.id) == Health()
    # Held mail is due at once; what had been attempted waits for its own retry.
    async with services.database.read() as connection:
        waiting = (
            await connection.execute(
                sa.select(messages.c.held_reason, messages.c.attempts).where(
                    messages.c.provider_id == account.provider.id
                )
            )
        ).all()
    held = [row for row in waiting if row.attempts == 0]
    assert len(held) >= 2
    assert all(row.held_reason is None for row in held)
    await drain(timeout=3)
    assert len(smtp_sink.messages) >= len(held)


class Greeter:
    """An SMTP server that answers every connection with one line and hangs up: ``421`` is a
    server that says it is not taking mail now."""

    def __init__(self, line: bytes) -> None:
        self.line = line
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> Greeter:
        self._server = await asyncio.start_server(self._greet, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _greet(self, _reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.write(self.line)
        with contextlib.suppress(Exception):
            await writer.drain()
        writer.close()


@pytest.mark.parametrize("trouble", ["421 at the greeting", "no reply after DATA"])
async def test_providers_in_trouble_hold_up_nobody_else(
    quick_circuit, make_account, make_smtp_sink, queue_batch, app_client, trouble
):
    """Three providers: one healthy, and one that is in trouble in either way. The healthy
    one's mail all goes out at once; the troubled one is marked down after three attempts."""
    services = app_client.app.state.services
    greeter = None
    if trouble == "421 at the greeting":
        greeter = await Greeter(b"421 4.3.2 mx.example closing, try later\r\n").start()
        troubled = await make_account("troubled@example.com", sink=greeter)
    else:
        # Takes the whole message, then says nothing for longer than the command timeout.
        stalling = await make_smtp_sink(delay_data=30.0)
        troubled = await make_account("troubled@example.com", sink=stalling)
    healthy_sink = await make_smtp_sink()
    healthy = await make_account("healthy@example.com", sink=healthy_sink)
    await queue_batch(troubled, [{**ITEM, "to": f"t{i}@example.com"} for i in range(20)])
    await queue_batch(healthy, [{**ITEM, "to": f"h{i}@example.com"} for i in range(40)])

    worker = services.worker(concurrency=16)
    running = asyncio.create_task(worker.run())
    try:
        started = time.monotonic()
        await healthy_sink.wait_for(40, timeout=10)
        healthy_took = time.monotonic() - started
        deadline = time.monotonic() + 15
        while (await provider_health(services.database, troubled.provider.id)).down_until is None:
            assert time.monotonic() < deadline, "never marked down"
            await asyncio.sleep(0.05)
    finally:
        worker.stop()
        await running
        if greeter is not None:
            await greeter.close()
    # Well before the troubled provider's first timeout (2 s per command here).
    assert healthy_took < 1.5
    health = await provider_health(services.database, troubled.provider.id)
    assert health.down_count == 1
    if greeter is not None:
        assert health.down_reason is not None
        assert health.down_reason.startswith("421 4.3.2 mx.example closing")
        assert greeter.connections <= 8  # a few attempts, not one per message
    else:
        assert health.down_reason is not None
        assert "did not answer DATA within 2 s" in health.down_reason
