"""Workers in other processes hear of newly queued mail at once on PostgreSQL (NOTIFY)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from mailpass.config import Settings
from mailpass.delivery import wakeup as wakeup_module
from mailpass.delivery.wakeup import CHANNEL, NOTIFY_INTERVAL, QueueWakeup
from mailpass.storage.database import Database


async def test_a_worker_elsewhere_hears_of_new_mail_at_once(
    settings: Settings, database: Database
) -> None:
    if database.is_sqlite:
        pytest.skip("SQLite has no channel between processes: their workers poll")
    elsewhere = Database(settings.resolved_database_url)  # stands for another process
    listening = QueueWakeup(elsewhere)
    listening.start_listening()
    try:
        await listening.wait(5)  # woken once when it starts listening, for what it missed
        started = asyncio.get_running_loop().time()
        await QueueWakeup(database).announce()
        await listening.wait(5)
        assert asyncio.get_running_loop().time() - started < 1.0
    finally:
        await listening.stop_listening()
        await elsewhere.dispose()


class Notifications:
    """NOTIFYs on the queue's channel, as a worker elsewhere hears them, by when they came."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self.connection = connection
        self.times: list[float] = []
        self.arrived = asyncio.Event()

    async def __aenter__(self) -> Notifications:
        await self.connection.add_listener(CHANNEL, self._heard)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.connection.close()

    def _heard(self, *_args: object) -> None:
        self.times.append(asyncio.get_running_loop().time())
        self.arrived.set()

    async def next_after(self, moment: float) -> float:
        """When the first NOTIFY after ``moment`` came (waiting up to 5 s for it)."""
        async with asyncio.timeout(5):
            while not any(time > moment for time in self.times):
                self.arrived.clear()
                await self.arrived.wait()
        return min(time for time in self.times if time > moment)


async def listen(database: Database) -> Notifications:
    url = database.url.set(drivername="postgresql").render_as_string(hide_password=False)
    return Notifications(await asyncpg.connect(url))


async def test_announcements_in_a_burst_share_notifies_and_the_last_is_told(
    database: Database,
) -> None:
    if database.is_sqlite:
        pytest.skip("SQLite has no channel between processes")
    wakeup = QueueWakeup(database)
    loop = asyncio.get_running_loop()
    async with await listen(database) as heard:
        # A request's worth of announcements every millisecond for ten intervals.
        end = loop.time() + 10 * NOTIFY_INTERVAL
        announced = 0
        while True:
            await wakeup.announce()
            announced += 1
            # Taken at once: a NOTIFY may go out in the millisecond slept below, and it is the
            # one that tells this announcement.
            last = loop.time()
            if last >= end:
                break
            await asyncio.sleep(0.001)
        await heard.next_after(last)  # the last announcement is told, after it was made
        await asyncio.sleep(3 * NOTIFY_INTERVAL)  # nothing more is due
        await wakeup.close()
    # One NOTIFY an interval at most (and the first at once), not one an announcement.
    assert announced > 50
    assert 2 <= len(heard.times) <= 10 + 3


async def test_closing_sends_the_notify_due_without_waiting_out_the_interval(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    if database.is_sqlite:
        pytest.skip("SQLite has no channel between processes")
    monkeypatch.setattr(wakeup_module, "NOTIFY_INTERVAL", 30.0)
    wakeup = QueueWakeup(database)
    loop = asyncio.get_running_loop()
    async with await listen(database) as heard:
        await wakeup.announce()
        first = await heard.next_after(0)
        await wakeup.announce()  # due, but 30 s from now
        await asyncio.sleep(0.2)
        assert heard.times == [first]
        closing = loop.time()
        await wakeup.close()
        await heard.next_after(closing)
        assert loop.time() - closing < 5


async def test_a_failed_notify_is_logged_and_the_next_announcement_tries_again(
    database: Database, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    if database.is_sqlite:
        pytest.skip("SQLite sends no NOTIFY")
    wakeup = QueueWakeup(database)
    async with await listen(database) as heard:
        with monkeypatch.context() as patched:
            patched.setattr(database, "fetch", _failing_fetch)
            await wakeup.announce()  # answers at once: the NOTIFY is the background's
            await wakeup.close()
        assert "cannot NOTIFY the workers (the database went away)" in caplog.text
        assert heard.times == []
        announced = asyncio.get_running_loop().time()
        await wakeup.announce()
        await heard.next_after(announced)
        await wakeup.close()


async def _failing_fetch(*_args: object, **_kwargs: object) -> list[dict[str, object]]:
    raise ConnectionRefusedError("the database went away")
