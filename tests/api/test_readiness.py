"""GET /readyz: ready while the database answers and the queue moves; 503 in the envelope with
what was found otherwise. GET /healthz only says the process answers."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from mailpass.api.app import create_app
from mailpass.config import Settings

ITEM = {"to": "user@example.com", "subject": "Hi", "text": "Hello"}


async def test_ready_with_nothing_due_and_no_worker(app_client):
    answer = await app_client.get("/readyz")
    assert answer.status_code == 200
    assert answer.json() == {
        "success": True,
        "data": {"status": "ready", "database": "ok", "workers": 0, "oldest_due_seconds": 0.0},
    }


async def test_due_mail_and_no_worker_is_a_stalled_queue(app_client, make_account, smtp_sink):
    account = await make_account(sink=smtp_sink)
    queued = await app_client.post(
        "/api/v1/mail/send-batch", json={"messages": [ITEM]}, headers=account.headers
    )
    assert queued.status_code == 200
    await asyncio.sleep(0.05)
    answer = await app_client.get("/readyz")
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "5"
    error = answer.json()["error"]
    assert error["code"] == "SERVICE_UNAVAILABLE"
    assert error["message"] == "mail is due and no queue worker is running"
    [found] = error["details"]
    assert found["database"] == "ok"
    assert found["workers"] == 0
    assert found["oldest_due_seconds"] > 0


async def test_ready_while_a_worker_beats(settings, app_client, make_account, smtp_sink):
    settings.worker_heartbeat_interval = 0.2
    worker = app_client.app.state.services.worker()
    running = asyncio.create_task(worker.run())
    try:
        await asyncio.sleep(0.1)
        answer = await app_client.get("/readyz")
        assert answer.status_code == 200
        assert answer.json()["data"]["workers"] == 1
    finally:
        worker.stop()
        await asyncio.wait_for(running, 10)


async def test_an_unreachable_database_is_503_not_500(tmp_path, unused_tcp_port):
    settings = Settings(
        data_dir=tmp_path,
        database_url=f"postgresql://postgres@127.0.0.1:{unused_tcp_port}/nowhere",
    )
    app = create_app(settings, migrate=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        answer = await client.get("/readyz")
        assert answer.status_code == 503
        assert answer.json()["error"]["details"] == [{"database": "unreachable"}]
        assert (await client.get("/healthz")).status_code == 200  # the process still answers


@pytest.fixture
def unused_tcp_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
