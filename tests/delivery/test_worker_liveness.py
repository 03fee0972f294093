"""Workers beat; a dead one's messages are taken back in seconds, not after their lease; a
database that goes away stops no worker for good, and says so once."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from mailpass.clock import utcnow
from mailpass.delivery import queue as queue_module
from mailpass.delivery import workers
from mailpass.delivery.queue import claim_due_messages
from mailpass.storage.tables import messages
from mailpass.storage.tables import workers as workers_table

ITEM = {"to": "user@example.com", "subject": "Hi", "text": "Hello"}
LEASE = timedelta(minutes=5)


@pytest.fixture
def quick_beats(settings):
    settings.worker_heartbeat_interval = 0.2  # dead after 0.6 s without a beat
    settings.queue_poll_interval = 0.1
    return settings


async def worker_rows(database):
    async with database.read() as connection:
        return (await connection.execute(sa.select(workers_table))).mappings().all()


async def claimed_by_a_dead_worker(database, *, host: str, pid: int, beat_ago: timedelta):
    """Register a worker that is not running, and let it claim everything due."""
    now = utcnow()
    async with database.transaction() as connection:
        registered = await connection.execute(
            workers_table.insert()
            .values(
                host=host,
                pid=pid,
                process="another process",
                started_at=now - beat_ago,
                heartbeat_at=now - beat_ago,
            )
            .returning(workers_table.c.id)
        )
        dead_id = registered.scalar_one()
        claimed = await claim_due_messages(
            connection, limit=100, now=now, lease=LEASE, skip_locked=False, worker_id=dead_id
        )
        claims = claimed.claims
    return dead_id, claims


async def test_a_worker_registers_beats_and_unregisters(quick_beats, app_client):
    services = app_client.app.state.services
    worker = services.worker()
    running = asyncio.create_task(worker.run())
    await asyncio.sleep(0.1)
    [row] = await worker_rows(services.database)
    assert (row["host"], row["pid"]) == (workers.this_host(), os.getpid())
    assert row["id"] == worker.worker_id
    first_beat = row["heartbeat_at"]
    await asyncio.sleep(0.5)
    [row] = await worker_rows(services.database)
    assert row["heartbeat_at"] > first_beat
    worker.stop()
    await asyncio.wait_for(running, 10)
    assert await worker_rows(services.database) == []


async def test_a_dead_workers_messages_are_taken_back_long_before_their_lease(
    quick_beats, make_account, smtp_sink, queue_batch, app_client
):
    services = app_client.app.state.services
    account = await make_account(sink=smtp_sink)
    await queue_batch(account, [{**ITEM, "to": f"u{i}@example.com"} for i in range(5)])
    # On another machine: its process cannot be looked at, only its beats.
    _dead, claims = await claimed_by_a_dead_worker(
        services.database, host="elsewhere", pid=1, beat_ago=timedelta(seconds=0)
    )
    assert len(claims) == 5
    worker = services.worker()
    running = asyncio.create_task(worker.run())
    started = asyncio.get_running_loop().time()
    try:
        await smtp_sink.wait_for(5, timeout=10)
        recovered = asyncio.get_running_loop().time() - started
    finally:
        worker.stop()
        await asyncio.wait_for(running, 10)
    # Three missed beats (0.6 s) and the next beat of the live worker, not the 5-minute lease.
    assert recovered < 5
    assert len(smtp_sink.messages) == 5
    async with services.database.read() as connection:
        statuses = (await connection.execute(sa.select(messages.c.status))).scalars().all()
    assert statuses == ["sent"] * 5
    assert [row["id"] for row in await worker_rows(services.database)] == []


# Beyond any pid this machine hands out (pid_max is at most 2**22): a process that is gone.
GONE = 2**22 + 12345


@pytest.mark.parametrize("pid", [GONE, os.getpid()], ids=["process gone", "same pid, restarted"])
async def test_a_worker_started_where_one_died_takes_its_messages_back_at_once(
    settings, make_account, smtp_sink, queue_batch, app_client, pid
):
    settings.worker_heartbeat_interval = 30.0  # its beats would not go stale within the test
    services = app_client.app.state.services
    account = await make_account(sink=smtp_sink)
    await queue_batch(account, [ITEM])
    _dead, claims = await claimed_by_a_dead_worker(
        services.database, host=workers.this_host(), pid=pid, beat_ago=timedelta(0)
    )
    assert len(claims) == 1
    await services.worker().run(until_idle=True)
    assert len(smtp_sink.messages) == 1


async def test_a_killed_worker_nobody_reaped_is_taken_for_dead_at_once(
    settings, make_account, smtp_sink, queue_batch, app_client
):
    """A zombie: killed, its parent gone too, and no init to reap it (a container's process 1
    that does not reap, the case of ``worker --processes`` killed as a group)."""
    settings.worker_heartbeat_interval = 30.0
    services = app_client.app.state.services
    account = await make_account(sink=smtp_sink)
    await queue_batch(account, [ITEM])
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 10
        while Path(f"/proc/{zombie.pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0] != b"Z":
            assert time.monotonic() < deadline, "the child never exited"
            await asyncio.sleep(0.01)
        os.kill(zombie.pid, 0)  # it still "exists"
        _dead, claims = await claimed_by_a_dead_worker(
            services.database, host=workers.this_host(), pid=zombie.pid, beat_ago=timedelta(0)
        )
        assert len(claims) == 1
        await services.worker().run(until_idle=True)
        assert len(smtp_sink.messages) == 1
    finally:
        zombie.wait()


async def test_a_live_worker_elsewhere_keeps_its_messages(
    quick_beats, make_account, smtp_sink, queue_batch, app_client
):
    services = app_client.app.state.services
    account = await make_account(sink=smtp_sink)
    await queue_batch(account, [ITEM])
    alive_id, claims = await claimed_by_a_dead_worker(
        services.database, host="elsewhere", pid=1, beat_ago=timedelta(0)
    )
    assert len(claims) == 1

    async def beat_for_it() -> None:
        while True:
            async with services.database.transaction() as connection:
                await workers.beat(connection, alive_id, utcnow())
            await asyncio.sleep(0.1)

    beating = asyncio.create_task(beat_for_it())
    worker = services.worker()
    running = asyncio.create_task(worker.run())
    await asyncio.sleep(1.5)  # well past three of its beats
    worker.stop()
    await asyncio.wait_for(running, 10)
    beating.cancel()
    assert smtp_sink.messages == []  # still the other worker's to send


async def test_a_failing_database_stops_no_worker_and_is_logged_once(
    quick_beats, make_account, smtp_sink, queue_batch, app_client, monkeypatch, caplog
):
    services = app_client.app.state.services
    account = await make_account(sink=smtp_sink)
    real_claim = queue_module.claim_due_messages
    failures = 0

    async def failing_claim(*args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal failures
        if failures < 4:
            failures += 1
            raise OperationalError("SELECT", None, ConnectionRefusedError("database is down"))
        return await real_claim(*args, **kwargs)

    monkeypatch.setattr("mailpass.delivery.worker.claim_due_messages", failing_claim)
    await queue_batch(account, [ITEM])
    worker = services.worker()
    with caplog.at_level(logging.WARNING, logger="mailpass.delivery"):
        running = asyncio.create_task(worker.run())
        try:
            await smtp_sink.wait_for(1, timeout=15)
        finally:
            worker.stop()
            await asyncio.wait_for(running, 10)
    assert failures == 4
    failed_lines = [r for r in caplog.records if "claiming queued mail failed" in r.getMessage()]
    assert len(failed_lines) == 1  # one line for the outage, not one per attempt
    assert any("claiming queued mail works again" in r.getMessage() for r in caplog.records)


async def test_a_worker_taken_for_dead_registers_again(quick_beats, app_client):
    services = app_client.app.state.services
    worker = services.worker()
    running = asyncio.create_task(worker.run())
    await asyncio.sleep(0.1)
    first_id = worker.worker_id
    async with services.database.transaction() as connection:
        await connection.execute(sa.delete(workers_table))  # as a peer that took it for dead
    await asyncio.sleep(0.6)
    try:
        [row] = await worker_rows(services.database)
        assert row["id"] == worker.worker_id != first_id
    finally:
        worker.stop()
        await asyncio.wait_for(running, 10)


async def test_a_claim_cut_off_as_it_committed_is_released_once_the_database_is_back(
    quick_beats, make_account, smtp_sink, queue_batch, app_client, monkeypatch
):
    """The connection broke during the claim's COMMIT, which went through: the messages are
    the worker's under its five-minute lease, though it never got them. The next claim that
    works makes them due again, and they go out at once."""
    services = app_client.app.state.services
    if services.database.is_sqlite:
        pytest.skip("a COMMIT is cut off with a network connection: PostgreSQL's case")
    account = await make_account(sink=smtp_sink)
    await queue_batch(account, [{**ITEM, "to": f"u{i}@example.com"} for i in range(3)])
    real_claim = queue_module.claim_due_messages
    cut_off = False

    async def committed_then_cut_off(connection, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal cut_off
        if cut_off:
            return await real_claim(connection, **kwargs)
        cut_off = True
        async with services.database.transaction() as elsewhere:  # commits
            claimed = await real_claim(elsewhere, **kwargs)
        assert len(claimed.claims) == 3
        raise OperationalError("COMMIT", None, ConnectionResetError("connection reset"))

    monkeypatch.setattr("mailpass.delivery.worker.claim_due_messages", committed_then_cut_off)
    worker = services.worker()
    running = asyncio.create_task(worker.run())
    try:
        await smtp_sink.wait_for(3, timeout=10)  # not after the 300 s lease
    finally:
        worker.stop()
        await asyncio.wait_for(running, 10)
    assert len(smtp_sink.messages) == 3


async def test_a_worker_whose_own_task_died_stops_instead_of_claiming_on(
    make_account, smtp_sink, queue_batch, app_client, monkeypatch
):
    """Its outcome writer retries everything that fails; were it to end all the same (a bug),
    the worker stops, saying which task ended and why, rather than claim mail whose outcomes
    nobody writes."""
    services = app_client.app.state.services
    account = await make_account(sink=smtp_sink)
    await queue_batch(account, [ITEM])
    worker = services.worker()

    async def broken_writer() -> None:
        raise KeyError("a bug in the writer")

    monkeypatch.setattr(worker, "_write_outcomes_forever", broken_writer)
    with pytest.raises(RuntimeError, match="the worker's task outcome writer ended") as stopped:
        await asyncio.wait_for(worker.run(), 10)
    assert isinstance(stopped.value.__cause__, KeyError)
