"""The queue across real processes: a SIGKILL mid-drain, several workers, cron, SIGTERM.

Each test runs on SQLite and on PostgreSQL; the servers and workers are `mailpass` processes
sending to a real SMTP server, and mail is queued over real HTTP.
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter

import pytest

from process_fixtures import (
    delivered_ids,
    free_port,
    post_batches,
    running,
    statuses,
    wait_healthy,
    wait_until,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def queue_env(cli_env):
    return {
        **cli_env,
        "MAILPASS_QUEUE_LEASE": "3",
        "MAILPASS_QUEUE_POLL_INTERVAL": "0.2",
        "MAILPASS_WORKER_CONCURRENCY": "16",
    }


async def test_sigkill_mid_drain_loses_nothing_and_duplicates_only_what_was_in_flight(
    queue_env, database, make_account, make_smtp_sink
):
    sink = await make_smtp_sink(delay_data=0.01)
    account = await make_account(sink=sink)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"

    async with running("serve", "--port", str(port), env=queue_env) as server:
        await wait_healthy(base_url, server)
        await post_batches(base_url, account, 1500, "crash")
        await wait_until(lambda: len(sink.messages) >= 300)
        server.kill()  # SIGKILL: no chance to clean up
        await server.wait()
    received_at_kill = len(sink.messages)
    in_flight_at_kill = (await statuses(database))["sending"]
    assert received_at_kill < 1500, "the kill came too late to be mid-drain"

    async with running("serve", "--port", str(port), env=queue_env) as server:
        await wait_healthy(base_url, server)
        await wait_until(lambda: len(delivered_ids(sink)) == 1500)
        await asyncio.sleep(0.5)  # a duplicate would arrive now, if one were coming

    ids = delivered_ids(sink)
    assert len(ids) == 1500  # every message delivered
    duplicates = sum(count - 1 for count in ids.values())
    assert duplicates <= in_flight_at_kill
    assert await statuses(database) == Counter({"sent": 1500})


async def test_two_workers_and_an_api_process_share_the_queue_and_the_limit(
    queue_env, database, make_account, make_smtp_sink, mailpass
):
    sink = await make_smtp_sink()
    limited_sink = await make_smtp_sink()
    account = await make_account("bulk@example.com", sink=sink)
    limited = await make_account(
        "limited@example.com", sink=limited_sink, provider_options={"hourly_limit": 50}
    )
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    worker_env = {**queue_env, "MAILPASS_WORKER_CONCURRENCY": "8"}

    async with (
        running("serve", "--no-worker", "--port", str(port), env=queue_env) as api,
        running("worker", env=worker_env) as first_worker,
        running("worker", "--concurrency", "8", env=worker_env) as second_worker,
    ):
        await wait_healthy(base_url, api)
        await post_batches(base_url, account, 1000, "bulk")
        await wait_until(lambda: len(sink.messages) >= 1000)
        await post_batches(base_url, limited, 200, "limited")
        await wait_until(lambda: len(limited_sink.messages) >= 50)
        await asyncio.sleep(2.0)  # ten polls of each worker: nobody may send a 51st

        for worker in (first_worker, second_worker):
            worker.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(first_worker.wait(), 15) == 0
        assert await asyncio.wait_for(second_worker.wait(), 15) == 0
        worker_logs = (await first_worker.stderr.read()).decode()
        worker_logs += (await second_worker.stderr.read()).decode()

    ids = delivered_ids(sink)
    assert len(ids) == 1000
    assert max(ids.values()) == 1  # none twice
    assert len(sink.messages) == 1000
    assert len(limited_sink.messages) == 50
    final = await statuses(database)
    assert final == Counter({"sent": 1050, "queued": 150})
    # Both workers did part of the work.
    sent_counts = [
        int(part.split(" sent")[0].split()[-1])
        for part in worker_logs.split("queue worker stopped: ")[1:]
    ]
    assert len(sent_counts) == 2
    assert all(count > 0 for count in sent_counts)
    assert sum(sent_counts) == 1050


async def test_queue_run_sends_what_is_due_and_exits(
    queue_env, app_client, make_account, make_smtp_sink, mailpass
):
    sink = await make_smtp_sink()
    account = await make_account(sink=sink)
    response = await app_client.post(
        "/api/v1/mail/send-batch",
        json={
            "messages": [
                {"to": f"c{i}@example.com", "subject": "cron", "text": "x"} for i in range(40)
            ]
        },
        headers=account.headers,
    )
    assert response.json()["data"]["queued"] == 40

    result = await mailpass("queue", "run")

    assert result.code == 0, result.err
    assert "40 sent" in result.err
    assert len(sink.messages) == 40
    again = await mailpass("queue", "run")
    assert again.code == 0
    assert "0 sent" in again.err


async def test_sigterm_lets_a_worker_finish_what_it_started(
    queue_env, database, make_account, make_smtp_sink, app_client
):
    sink = await make_smtp_sink(delay_data=0.05)
    account = await make_account(sink=sink)
    await app_client.post(
        "/api/v1/mail/send-batch",
        json={
            "messages": [
                {"to": f"t{i}@example.com", "subject": "t", "text": "x"} for i in range(100)
            ]
        },
        headers=account.headers,
    )
    async with running("worker", env=queue_env) as worker:
        await wait_until(lambda: len(sink.messages) >= 5)
        worker.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(worker.wait(), 15) == 0
    final = await statuses(database)
    assert final["sending"] == 0
    assert final["sent"] == len(sink.messages)
    assert final["sent"] + final["queued"] == 100


async def test_worker_processes_share_the_queue_and_stop_together(
    queue_env, database, make_account, make_smtp_sink, app_client
):
    """`worker --processes 2`: two processes drain one queue, each mail exactly once, and
    SIGTERM stops both after they finish what they started."""
    sink = await make_smtp_sink()
    account = await make_account(sink=sink)
    for start in range(0, 600, 100):
        response = await app_client.post(
            "/api/v1/mail/send-batch",
            json={
                "messages": [
                    {"to": f"p{i}@example.com", "subject": f"p {i}", "text": "x"}
                    for i in range(start, start + 100)
                ]
            },
            headers=account.headers,
        )
        assert response.json()["data"]["queued"] == 100
    async with running("worker", "--processes", "2", env=queue_env) as worker:
        await wait_until(lambda: len(sink.messages) >= 600)
        await asyncio.sleep(1.0)  # nothing more may arrive: no message is sent twice
        worker.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(worker.wait(), 15) == 0
        logs = (await worker.stderr.read()).decode()
    ids = delivered_ids(sink)
    assert len(ids) == 600
    assert max(ids.values()) == 1
    assert await statuses(database) == Counter({"sent": 600})
    # Both processes sent part of it, and each said so as it stopped.
    sent_counts = [int(part.split(" sent")[0]) for part in logs.split("queue worker stopped: ")[1:]]
    assert len(sent_counts) == 2, logs
    assert all(count > 0 for count in sent_counts), sent_counts
    assert sum(sent_counts) == 600
