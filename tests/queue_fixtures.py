"""Queue fixtures: queue through the real API, then run a real worker over the queue."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from mailpass.storage.tables import messages


@pytest.fixture
def fast_retries(settings):
    """Retries after ~50 ms instead of a minute, so a test can watch a retry happen."""
    settings.retry_base_delay = 0.05
    settings.retry_max_delay = 0.2
    settings.queue_poll_interval = 0.05
    return settings


@pytest.fixture
def queue_batch(app_client):
    async def queue(account, items, **defaults):
        response = await app_client.post(
            "/api/v1/mail/send-batch",
            json={"messages": items, **defaults},
            headers=account.headers,
        )
        assert response.status_code == 200, response.text
        return response.json()["data"]

    return queue


@pytest.fixture
def drain(app_client):
    """Run workers over the queue until nothing is queued or being sent (or ``timeout``)."""

    async def run(timeout: float = 10.0, **worker_options):
        services = app_client.app.state.services
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            worker = services.worker(**worker_options)
            await worker.run(until_idle=True)
            async with services.database.read() as connection:
                waiting = (
                    await connection.execute(
                        sa.select(sa.func.count())
                        .select_from(messages)
                        .where(messages.c.status.in_(["queued", "sending"]))
                    )
                ).scalar_one()
            if not waiting or asyncio.get_running_loop().time() > deadline:
                return waiting
            await asyncio.sleep(0.05)

    return run


@pytest.fixture
def status_of(app_client):
    async def status(account, message_id):
        response = await app_client.get(
            f"/api/v1/mail/status/{message_id}", headers=account.headers
        )
        assert response.status_code == 200, response.text
        return response.json()["data"]["message"]

    return status
