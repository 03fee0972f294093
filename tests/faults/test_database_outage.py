"""PostgreSQL cut off mid-drain and back after a few seconds, as a restart or a failover looks
from a worker: the worker keeps running, says so once, and the queue drains again within
seconds of the database's return. Nothing is lost, nothing is sent twice.

The worker is a real `mailpass worker` process reaching the database through a proxy the test
cuts (every connection reset, new ones refused) and restores.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from process_fixtures import delivered_ids, running, statuses, wait_until

pytestmark = pytest.mark.slow

MESSAGES = 400
OUTAGE = 4.0  # seconds the database is away
RECOVERY_TARGET = 10.0  # seconds from its return to the queue moving again (the issue's)


async def queue(app_client, account, count: int) -> None:
    for start in range(0, count, 100):
        items = [
            {"to": f"outage{i}@example.com", "subject": f"outage {i}", "text": "x"}
            for i in range(start, min(start + 100, count))
        ]
        answer = await app_client.post(
            "/api/v1/mail/send-batch", json={"messages": items}, headers=account.headers
        )
        assert answer.status_code == 200, answer.text


async def test_a_worker_rides_out_a_database_outage(
    cli_env, postgres_proxy, database, make_account, make_smtp_sink, app_client
):
    proxy, url_through_proxy = postgres_proxy
    sink = await make_smtp_sink(delay_data=0.02)
    account = await make_account(sink=sink)
    env = {
        **cli_env,
        "MAILPASS_DATABASE_URL": url_through_proxy,
        "MAILPASS_QUEUE_POLL_INTERVAL": "0.2",
        "MAILPASS_WORKER_CONCURRENCY": "8",
        "MAILPASS_WORKER_HEARTBEAT_INTERVAL": "0.5",
    }
    await queue(app_client, account, MESSAGES)  # the API, with no worker of its own
    async with running("worker", env=env) as worker:
        await wait_until(lambda: len(sink.messages) >= 50)
        await proxy.cut()
        await asyncio.sleep(OUTAGE)
        assert worker.returncode is None, "the worker died with its database"
        received = len(sink.messages)
        await proxy.restore()
        restored = time.monotonic()
        await wait_until(lambda: len(sink.messages) > received, timeout=RECOVERY_TARGET)
        moving_after = time.monotonic() - restored
        try:
            await wait_until(lambda: len(delivered_ids(sink)) == MESSAGES)
        except BaseException:
            worker.terminate()
            await worker.wait()
            log = (await worker.stderr.read()).decode()
            counts = await statuses(database)
            pytest.fail(f"not drained: {counts}; the worker said:\n{log}")
        await asyncio.sleep(0.5)  # a duplicate would arrive now, if one were coming
        worker.terminate()
        assert await asyncio.wait_for(worker.wait(), 15) == 0
        log = (await worker.stderr.read()).decode()
    print(f"database back to queue moving: {moving_after:.1f} s")
    assert moving_after < RECOVERY_TARGET
    ids = delivered_ids(sink)
    assert len(ids) == MESSAGES
    assert max(ids.values()) == 1  # the outcomes waited for the database: nothing twice
    assert set((await statuses(database)).elements()) == {"sent"}
    # One line when claiming started failing and one when it worked again; no traceback per try.
    assert log.count("claiming queued mail failed") == 1
    assert log.count("claiming queued mail works again") == 1
